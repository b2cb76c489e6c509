/**
 * The poller turns devices into readings: each device is read every `pollMs` (or on its backoff
 * while offline). All devices of a line share the line's queue, so a dead device costs the line
 * one timeout per backoff step and never stalls the others. 'idle': no read is in flight (a poll
 * cycle has ended; the gateway writes its readings together).
 */
import { EventEmitter } from 'node:events';
import type { GatewayDevice } from '../drivers/device.js';
import type { DriverError } from '../drivers/errors.js';
import type { Values } from '../drivers/devices/types.js';
import type { Logger } from './log.js';

export interface RawReading {
  device: string;
  ts: string;
  /** `ts` in ms since the epoch (the number it was made from) */
  ms?: number;
  values: Values;
}

export interface PollerOptions {
  /** wall clock, for the readings' timestamps */
  now?: () => number;
  /** monotonic clock, for the cadence (a wall-clock step must not stall polling) */
  mono?: () => number;
  /** Device state changes and error changes are logged here, once per change (not per repeat). */
  logger?: Logger;
}

export class Poller extends EventEmitter {
  private running = false;
  private timers = new Map<string, NodeJS.Timeout>();
  private inFlight = new Set<Promise<void>>();
  /** per device: when its next poll is due (waiting) or when the one in flight started (monotonic ms) */
  private readonly due = new Map<string, { at: number; inFlight: boolean }>();
  /** polls completed (read or failed), for the watchdog */
  completed = 0;
  private readonly now: () => number;
  private readonly mono: () => number;

  constructor(
    readonly devices: GatewayDevice[],
    opts: PollerOptions = {},
  ) {
    super();
    this.now = opts.now ?? Date.now;
    this.mono = opts.mono ?? (() => performance.now());
    // readings a device reports by itself (a Firmata input edge), stamped with when it happened
    for (const d of devices)
      d.on('push', (values: Values, atMs: number) => {
        if (this.running) this.emit('reading', { device: d.id, ts: new Date(atMs).toISOString(), values } satisfies RawReading);
      });
    const log = opts.logger;
    if (log) {
      for (const d of devices) {
        d.on('status', (status: string) =>
          (status === 'offline' ? log.warn.bind(log) : log.info.bind(log))({ device: d.id, status, counters: d.counters }, `device ${d.id} ${status}`),
        );
        d.on('error-change', (err: DriverError | null) =>
          err
            ? log.warn({ device: d.id, code: err.code, err: err.message }, `device ${d.id}: ${err.code}`)
            : log.info({ device: d.id }, `device ${d.id}: errors cleared`),
        );
      }
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const d of this.devices) this.schedule(d, 0);
  }

  private schedule(d: GatewayDevice, delay: number): void {
    if (!this.running) return;
    // one entry per device, updated in place (not two new objects a poll)
    let due = this.due.get(d.id);
    if (!due) this.due.set(d.id, (due = { at: 0, inFlight: false }));
    due.at = this.mono() + delay;
    due.inFlight = false;
    const entry = due;
    const timer = setTimeout(() => {
      const started = this.mono();
      entry.at = started;
      entry.inFlight = true;
      const p: Promise<void> = this.pollOnce(d).then(() => {
        this.inFlight.delete(p);
        this.completed++;
        this.firstDone.add(d.id);
        // keep the cadence: the next poll is due pollMs after this one started
        const elapsed = this.mono() - started;
        this.schedule(d, Math.min(d.nextDelayMs(), Math.max(0, d.nextDelayMs() - elapsed)));
        if (!this.inFlight.size) this.emit('idle');
      });
      this.inFlight.add(p);
    }, delay);
    this.timers.set(d.id, timer);
  }

  /** One read; whatever a listener does with the result, the device is polled again. */
  private async pollOnce(d: GatewayDevice): Promise<void> {
    let reading: RawReading | undefined;
    let error: DriverError | undefined;
    try {
      const values = await d.read();
      const ms = this.now();
      reading = { device: d.id, ts: new Date(ms).toISOString(), ms, values };
    } catch (e) {
      error = e as DriverError;
    }
    try {
      if (reading) this.emit('reading', reading);
      else this.emit('read-error', d.id, error);
    } catch (e) {
      this.emit('listener-error', d.id, e);
    }
  }

  /**
   * How far behind the polling is, in ms: the longest a device has waited past its due time, or has
   * had a read in flight (minus `readAllowanceMs`, what a read may take on a busy line). 0: on time.
   */
  lagMs(readAllowanceMs: number): number {
    const now = this.mono();
    let worst = 0;
    for (const d of this.due.values()) worst = Math.max(worst, now - d.at - (d.inFlight ? readAllowanceMs : 0));
    return worst;
  }

  /** Reads in flight now (0 when 'idle' is emitted). */
  get readsInFlight(): number {
    return this.inFlight.size;
  }

  /** Every device has finished its first poll (read or failed). */
  get firstCycleDone(): boolean {
    return this.firstDone.size === this.devices.length;
  }
  private readonly firstDone = new Set<string>();

  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.all([...this.inFlight]);
  }
}
