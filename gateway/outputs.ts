/**
 * Outputs: carry the rules' decisions to relay channels and read them back. The state the device
 * confirms is the truth; a relay that does not confirm (or that a poll finds in the wrong state)
 * is an `output_fault` event, and the wanted state is written again.
 */
import type { GatewayDevice } from '../drivers/device.js';
import type { OutputSettings } from './config/schema.js';
import type { Logger } from './log.js';
import type { Reading } from './reading.js';

export type OutputActual = 'on' | 'off' | 'unknown';

export interface OutputFault {
  output: string;
  wanted: 'on' | 'off';
  actual: OutputActual;
  reason: 'no_confirmation' | 'write_failed' | 'state_mismatch';
  error?: string;
}

export class OutputManager {
  readonly actual: Record<string, OutputActual> = {};
  private readonly wanted: Record<string, boolean> = {};
  private chains = new Map<string, Promise<unknown>>();
  private busy = new Set<string>();
  private lastWrite: Record<string, number> = {};

  constructor(
    private readonly outputs: Record<string, OutputSettings>,
    private readonly devices: Map<string, GatewayDevice>,
    private readonly onFault: (f: OutputFault) => void,
    private readonly logger?: Logger,
  ) {
    for (const n of Object.keys(outputs)) this.actual[n] = 'unknown';
  }

  /** Writes to one device are serialised (they share its line anyway). */
  private enqueue<T>(device: string, job: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(device) ?? Promise.resolve();
    const token = {};
    this.outstanding.set(token, performance.now());
    const next = prev.then(job, job);
    this.chains.set(device, next.catch(() => undefined));
    void next.finally(() => this.outstanding.delete(token)).catch(() => undefined);
    return next;
  }

  /** Commands given and not yet confirmed (or failed), with when each was given (monotonic ms). */
  private readonly outstanding = new Map<object, number>();

  /** How long the oldest command not yet done has waited, in ms (0: none): a stuck output path (the watchdog). */
  pendingMs(now = performance.now()): number {
    let oldest = Infinity;
    for (const t of this.outstanding.values()) if (t < oldest) oldest = t;
    return oldest === Infinity ? 0 : now - oldest;
  }

  /** Switch an output and read it back; resolves with the confirmed state. */
  set(name: string, on: boolean): Promise<OutputActual> {
    const cfg = this.outputs[name];
    if (!cfg) return Promise.resolve('unknown');
    this.wanted[name] = on;
    const dev = this.devices.get(cfg.device);
    if (!dev) return Promise.resolve('unknown');
    this.busy.add(name);
    return this.enqueue(cfg.device, async () => {
      const want = this.wanted[name] ?? false; // the latest wish wins if several queued up
      const wantS = want ? 'on' : 'off';
      try {
        await dev.writeChannel(cfg.channel, want);
        const bits = await dev.readChannels();
        const got = bits[cfg.channel - 1];
        this.actual[name] = got === undefined ? 'unknown' : got ? 'on' : 'off';
        if (this.actual[name] !== wantS) this.onFault({ output: name, wanted: wantS, actual: this.actual[name], reason: 'no_confirmation' });
      } catch (e) {
        this.actual[name] = 'unknown';
        this.onFault({ output: name, wanted: wantS, actual: 'unknown', reason: 'write_failed', error: (e as Error).message });
      } finally {
        this.busy.delete(name);
        this.lastWrite[name] = performance.now();
      }
      return this.actual[name]!;
    });
  }

  /** Every output off and read back (start-up and shutdown). */
  async allOff(): Promise<Record<string, OutputActual>> {
    await Promise.all(Object.keys(this.outputs).map((n) => this.set(n, false)));
    return { ...this.actual };
  }

  /**
   * Channels not mapped to any output switched off and read back (mapped ones are set through
   * set()). A device that does not answer the first write is not tried channel by channel.
   */
  async channelsOff(relays: Map<string, number[]>): Promise<{ device: string; channel: number; actual: 'on' | 'unknown' }[]> {
    const mapped = new Set(Object.values(this.outputs).map((o) => `${o.device}/${o.channel}`));
    const bad: { device: string; channel: number; actual: 'on' | 'unknown' }[] = [];
    await Promise.all(
      [...relays].map(([device, channels]) => {
        const dev = this.devices.get(device);
        const free = channels.filter((c) => !mapped.has(`${device}/${c}`));
        if (!dev || !free.length) return Promise.resolve();
        return this.enqueue(device, async () => {
          try {
            for (const c of free) await dev.writeChannel(c, false);
            const bits = await dev.readChannels();
            for (const c of free) if (bits[c - 1] !== false) bad.push({ device, channel: c, actual: bits[c - 1] === undefined ? 'unknown' : 'on' });
          } catch (e) {
            this.logger?.warn({ device, err: (e as Error).message }, `relay channels of ${device} could not be switched off: ${(e as Error).message}`);
            for (const c of free) bad.push({ device, channel: c, actual: 'unknown' });
          }
        });
      }),
    );
    return bad;
  }

  /**
   * A poll of a relay device: update what the outputs are, and put back any output found in the
   * wrong state (a relay module that lost power comes back all off).
   */
  onReading(r: Reading): void {
    for (const [name, cfg] of Object.entries(this.outputs)) {
      if (cfg.device !== r.device) continue;
      const v = r.values[`ch${cfg.channel}`];
      if (v === undefined || this.busy.has(name)) continue;
      const actual: OutputActual = v ? 'on' : 'off';
      const want = this.wanted[name];
      this.actual[name] = actual;
      if (want === undefined || (actual === 'on') === want) continue;
      // give a write that just finished time to show up in the next poll
      if (performance.now() - (this.lastWrite[name] ?? -Infinity) < 1000) continue;
      this.logger?.warn({ output: name, wanted: want, actual }, `output ${name} found ${actual}; switching it ${want ? 'on' : 'off'} again`);
      this.onFault({ output: name, wanted: want ? 'on' : 'off', actual, reason: 'state_mismatch' });
      void this.set(name, want);
    }
  }

  /** A device is back (reconnected, powered again): put each of its outputs where it is wanted. */
  restore(device: string): void {
    for (const [name, cfg] of Object.entries(this.outputs)) {
      const want = this.wanted[name];
      if (cfg.device === device && want !== undefined) {
        this.logger?.info({ output: name, wanted: want }, `device ${device} is back: output ${name} set ${want ? 'on' : 'off'} again`);
        void this.set(name, want);
      }
    }
  }

  async idle(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }
}
