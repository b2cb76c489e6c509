/**
 * A Line is one physical or logical bus: a ByteLink plus the queue that keeps exactly one request
 * on the wire at a time. It owns the link's life: open, notice a close (adapter pulled, socket
 * dropped), reopen with exponential backoff, and fail queued requests fast while it is down.
 */
import { EventEmitter } from 'node:events';
import type { ByteLink } from './transports/link.js';
import { Reopener } from './reopen.js';
import { DriverError } from './errors.js';

export type ParseResult<T> = { done: T } | { fail: DriverError } | undefined;

/** One request/response on the wire. Protocol codecs build these; the Line runs them. */
export interface Exchange<T> {
  tx: Buffer;
  timeoutMs: number;
  /** Look at everything received since tx; return done/fail, or undefined to wait for more. */
  parse(rx: Buffer): ParseResult<T>;
  /** Called after `silenceMs` without new bytes (rx non-empty). Return an error to fail now. */
  onSilence?(rx: Buffer): DriverError | undefined;
  /** Called when timeoutMs passes without a result. */
  onTimeout(rx: Buffer): DriverError;
}

export type LineState = 'idle' | 'opening' | 'open' | 'down' | 'stopped';

export interface LineOptions {
  id: string;
  link: ByteLink;
  /** Silence after which a partial reply is judged (RTU: frame end). */
  silenceMs?: number;
  /** Minimum quiet time between the last byte received and the next request (RTU 3.5 characters). */
  interFrameMs?: number;
  reopenInitialMs?: number;
  reopenMaxMs?: number;
}

export interface LineCounters {
  opens: number;
  closes: number;
  openFailures: number;
  staleBytes: number;
}

interface Job {
  run: () => Promise<void>;
}

export class Line extends EventEmitter {
  readonly id: string;
  readonly link: ByteLink;
  private _state: LineState = 'idle';
  private queue: Job[] = [];
  private busy = false;
  private rx: Buffer = Buffer.alloc(0);
  private onRx: (() => void) | undefined;
  private lastRxAt = 0;
  private readonly reopener: Reopener;
  private openPromise: Promise<void> | undefined;
  lastOpenError: DriverError | undefined;
  readonly counters: LineCounters = { opens: 0, closes: 0, openFailures: 0, staleBytes: 0 };

  constructor(private readonly options: LineOptions) {
    super();
    this.id = options.id;
    this.link = options.link;
    this.reopener = new Reopener(() => void this.tryOpen(), options.reopenInitialMs, options.reopenMaxMs);
    this.link.on('data', (d) => {
      this.lastRxAt = performance.now();
      this.rx = this.rx.length === 0 ? d : Buffer.concat([this.rx, d]);
      this.onRx?.();
    });
    this.link.on('close', (err) => this.handleClose(err));
  }

  get state(): LineState {
    return this._state;
  }
  get address(): string {
    return this.link.address;
  }

  private setState(s: LineState, detail?: unknown): void {
    if (this._state === s) return;
    this._state = s;
    this.emit('state', s, detail);
  }

  /** Open the link; on failure keep retrying in the background. Resolves after the first attempt. */
  start(): Promise<void> {
    if (this._state === 'stopped') this._state = 'idle';
    return this.tryOpen();
  }

  /** Open once and throw on failure (for one-off CLI use). */
  async openOnce(): Promise<void> {
    await this.tryOpen();
    if (this._state !== 'open') {
      this.stopReopen();
      this._state = 'stopped';
      throw this.lastOpenError ?? new DriverError('open_failed', `cannot open ${this.address}`);
    }
  }

  private tryOpen(): Promise<void> {
    if (this.openPromise) return this.openPromise;
    if (this._state === 'open' || this._state === 'stopped') return Promise.resolve();
    this.setState('opening');
    this.openPromise = this.link
      .open()
      .then(() => {
        this.counters.opens++;
        this.reopener.reset();
        this.lastOpenError = undefined;
        this.rx = EMPTY;
        this.setState('open');
      })
      .catch((e: unknown) => {
        this.counters.openFailures++;
        this.lastOpenError =
          e instanceof DriverError ? e : new DriverError('open_failed', `cannot open ${this.address}: ${String(e)}`);
        this.setState('down', this.lastOpenError);
        this.scheduleReopen();
      })
      .finally(() => {
        this.openPromise = undefined;
      });
    return this.openPromise;
  }

  private scheduleReopen(): void {
    if (this._state !== 'stopped') this.reopener.schedule();
  }

  private stopReopen(): void {
    this.reopener.cancel();
  }

  /** The device node is gone while the fd still looks open: close it and start reopening. */
  private vanished(): void {
    if (this._state !== 'open') return;
    this.handleClose(new Error('device node vanished'));
    void this.link.close().catch(() => undefined);
  }

  private handleClose(err?: Error): void {
    if (this._state === 'stopped' || this._state === 'down') return;
    this.counters.closes++;
    const reason = new DriverError('closed', `${this.address} closed${err ? `: ${err.message}` : ''}`, { bus: this.id });
    this.setState('down', reason);
    this.onRx?.(); // wake an in-flight exchange; it sees the line is down
    this.scheduleReopen();
  }

  async stop(): Promise<void> {
    this.setState('stopped');
    this.stopReopen();
    await this.openPromise?.catch(() => undefined);
    await this.link.close().catch(() => undefined);
  }

  /** Queue an exchange; it runs when every earlier one is done. Fails fast with `closed` while the line is down. */
  transact<T>(ex: Exchange<T>): Promise<T> {
    if (!this.busy && !this.queue.length) {
      // nothing waiting: straight onto the wire (no promise and closure of a queue entry per request)
      this.busy = true;
      const p = this.runExchange(ex);
      p.then(this.next, this.next);
      return p;
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: () => this.runExchange(ex).then(resolve, reject) });
      this.pump();
    });
  }

  /** The exchange on the wire is done: the next one. */
  private readonly next = () => {
    this.busy = false;
    this.pump();
  };

  /** Requests waiting behind the one on the wire. */
  get queued(): number {
    return this.queue.length;
  }

  private pump(): void {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) return;
    this.busy = true;
    void job.run().then(this.next, this.next);
  }

  private runExchange<T>(ex: Exchange<T>): Promise<T> {
    if (this._state !== 'open' || !this.link.isOpen)
      return Promise.reject(new DriverError('closed', `${this.address} is not open`, { bus: this.id }));
    const gap = this.options.interFrameMs ?? 0;
    const wait = gap > 0 ? this.lastRxAt + gap - performance.now() : 0;
    // RTU: keep 3.5 characters of silence after the last reply before talking again.
    return wait > 0.5 ? sleep(wait).then(() => this.onWire(ex)) : this.onWire(ex);
  }

  private onWire<T>(ex: Exchange<T>): Promise<T> {
    if (this._state !== 'open') return Promise.reject(new DriverError('closed', `${this.address} is not open`, { bus: this.id }));
    if (this.rx.length) {
      this.counters.staleBytes += this.rx.length; // late replies and line noise from before this request
      this.rx = EMPTY;
    }
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let silenceTimer: NodeJS.Timeout | undefined;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (silenceTimer) clearTimeout(silenceTimer);
        this.onRx = undefined;
        f();
      };
      const timer = setTimeout(() => {
        finish(() => reject(ex.onTimeout(this.rx)));
        if (this.link.stillThere && !this.link.stillThere()) this.vanished();
      }, ex.timeoutMs);
      const silenceMs = this.options.silenceMs;
      this.onRx = () => {
        if (this._state !== 'open') {
          finish(() => reject(new DriverError('closed', `${this.address} closed during the request`, { bus: this.id })));
          return;
        }
        const r = ex.parse(this.rx);
        if (r && 'done' in r) {
          this.rx = EMPTY;
          finish(() => resolve(r.done));
        } else if (r && 'fail' in r) {
          finish(() => reject(r.fail));
        } else if (silenceMs && ex.onSilence) {
          if (silenceTimer) clearTimeout(silenceTimer);
          silenceTimer = setTimeout(() => {
            const err = ex.onSilence!(this.rx);
            if (err) finish(() => reject(err));
          }, silenceMs);
        }
      };
      this.link.write(ex.tx, (e) => finish(() => reject(e)));
    });
  }
}

/** an empty receive buffer (never written to: received bytes make a new one) */
const EMPTY = Buffer.alloc(0);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Time on the wire for `bytes` characters at `baudRate`: 11 bits per character (start, 8 data, parity or 2nd stop, stop). */
export function wireTimeMs(bytes: number, baudRate: number): number {
  return (bytes * 11 * 1000) / baudRate;
}
