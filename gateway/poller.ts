/**
 * The poller turns devices into readings: each device is read every `pollMs` (or on its backoff
 * while offline). The devices of a line are read one after another by the line's loop, earliest
 * due first, so a dead device costs the line one timeout per backoff step and never stalls the
 * others. 'idle': every line's loop has gone back to sleep and no read is in flight (a poll cycle
 * has ended; the gateway writes its readings together).
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

/** A device's place in its line's loop: when its next poll is due (waiting) or when the one in flight started (monotonic ms). */
interface Slot {
  readonly d: GatewayDevice;
  readonly line: LineLoop;
  at: number;
  inFlight: boolean;
  /** polled at least once (read or failed) */
  polled: boolean;
}

/** The devices that share one line (a Modbus bus, a Firmata board), read one after another by one loop. */
interface LineLoop {
  readonly slots: Slot[];
  timer: NodeJS.Timeout | undefined;
  /** the loop's run now (between waking and going back to sleep); settled when it goes back to sleep */
  run: Promise<void> | undefined;
  ran: (() => void) | undefined;
  readonly wake: () => void;
}

/** A device due within this much of now is read in this round (a timer may fire a fraction of a ms early). */
const DUE_SLACK_MS = 1;

export class Poller extends EventEmitter {
  private running = false;
  private readonly lines: LineLoop[] = [];
  private readonly slots: Slot[] = [];
  /** lines whose loop is reading now */
  private active = 0;
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
    // One loop per line, not a timer and a queued read per device: a line carries one request at a
    // time anyway, so its due devices are read one after another when it wakes (one timer a line,
    // a device's read on the wire right after the one before it), and a write to an output on the
    // line waits behind at most the one read in flight, not behind a whole cycle's queued reads.
    const byLine = new Map<object, LineLoop>();
    for (const d of devices) {
      let line = byLine.get(d.bus);
      if (!line) {
        const l: LineLoop = { slots: [], timer: undefined, run: undefined, ran: undefined, wake: () => this.wake(l) };
        byLine.set(d.bus, (line = l));
        this.lines.push(l);
      }
      const slot: Slot = { d, line, at: 0, inFlight: false, polled: false };
      line.slots.push(slot);
      this.slots.push(slot);
    }
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
    const now = this.mono();
    for (const s of this.slots) s.at = now;
    for (const l of this.lines) {
      clearTimeout(l.timer);
      l.timer = setTimeout(l.wake, 0);
    }
  }

  private wake(line: LineLoop): void {
    line.timer = undefined;
    if (!this.running || line.run) return;
    this.active++;
    // one promise a run (what stop() waits for), not an async frame per read: issue 17
    line.run = new Promise<void>((resolve) => (line.ran = resolve));
    this.readNext(line);
  }

  /** Read the line's next due device, earliest due first; when none is due, sleep until one is. */
  private readNext(line: LineLoop): void {
    let next: Slot | undefined;
    if (this.running) for (const s of line.slots) if (!next || s.at < next.at) next = s;
    if (!next) return this.sleep(line);
    const wait = next.at - this.mono();
    if (wait > DUE_SLACK_MS) {
      line.timer = setTimeout(line.wake, Math.ceil(wait));
      return this.sleep(line);
    }
    const slot = next;
    const due = slot.at;
    slot.at = this.mono();
    slot.inFlight = true;
    let p: Promise<Values>;
    try {
      p = slot.d.read();
    } catch (e) {
      p = Promise.reject(e);
    }
    p.then(
      (values) => this.polled(line, slot, due, values, undefined),
      (e: unknown) => this.polled(line, slot, due, undefined, e as DriverError),
    );
  }

  /** One read done (values or error): hand it on; whatever a listener does with it, the line goes on. */
  private polled(line: LineLoop, slot: Slot, due: number, values: Values | undefined, error: DriverError | undefined): void {
    const d = slot.d;
    try {
      if (values) {
        const ms = this.now();
        this.emit('reading', { device: d.id, ts: new Date(ms).toISOString(), ms, values } satisfies RawReading);
      } else this.emit('read-error', d.id, error);
    } catch (e) {
      this.listenerFailed(d.id, e);
    }
    slot.inFlight = false;
    this.completed++;
    if (!slot.polled) {
      slot.polled = true;
      this.firstPolled++;
    }
    // keep the cadence: the next poll is due pollMs after this one was due (so the devices of a line
    // that were due together stay due together: one wake-up a cycle), or now when the line is behind
    slot.at = Math.max(due + d.nextDelayMs(), this.mono());
    this.readNext(line);
  }

  /** The line's loop goes back to sleep (its timer, if any, is armed). */
  private sleep(line: LineLoop): void {
    const ran = line.ran;
    line.run = line.ran = undefined;
    ran?.();
    if (--this.active === 0) this.cycleEnded();
  }

  /** Every line has gone back to sleep: a poll cycle has ended (the gateway writes its readings together). */
  private cycleEnded(): void {
    try {
      this.emit('idle');
    } catch (e) {
      this.listenerFailed('idle', e);
    }
  }

  /** A listener threw: say so, and never let it end the line's loop (its devices would not be read again). */
  private listenerFailed(what: string, e: unknown): void {
    try {
      this.emit('listener-error', what, e);
    } catch {
      // the one who would be told threw as well: nothing left to tell
    }
  }

  /**
   * How far behind the polling is, in ms: the longest a device has waited past its due time, or has
   * had a read in flight (minus `readAllowanceMs`, what a read may take on a busy line). 0: on time.
   */
  lagMs(readAllowanceMs: number): number {
    const now = this.mono();
    let worst = 0;
    // a device waiting on a line that is reading now waits in the line's turn, as a queued request would
    for (const s of this.slots) worst = Math.max(worst, now - s.at - (s.inFlight || s.line.run ? readAllowanceMs : 0));
    return worst;
  }

  /** Reads in flight now (0 when 'idle' is emitted). */
  get readsInFlight(): number {
    let n = 0;
    for (const s of this.slots) if (s.inFlight) n++;
    return n;
  }

  /** Every device has finished its first poll (read or failed). */
  get firstCycleDone(): boolean {
    return this.firstPolled === this.slots.length;
  }
  private firstPolled = 0;

  async stop(): Promise<void> {
    this.running = false;
    for (const l of this.lines) {
      clearTimeout(l.timer);
      l.timer = undefined;
    }
    await Promise.all(this.lines.map((l) => l.run));
  }
}
