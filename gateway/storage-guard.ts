/**
 * The data path's writes, kept away from the control path (SPEC §1 safety, §7): a store that
 * cannot write (disk full, I/O error, read-only file system) becomes a reported state instead of
 * an exception in the middle of a poll or a rule decision.
 *
 * On a full disk the oldest telemetry is evicted to make room (the reserve file is given up first,
 * so that even the delete has room); if writes still fail the store is `failing`: telemetry is
 * dropped and counted, events wait in memory (up to `maxPendingEvents`, oldest dropped first) and
 * are written, with their seqs, as soon as the store takes writes again. A write is tried again at
 * most every `retryMs`; recovery needs nobody.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from './log.js';
import { addEviction, storageErrorCode, type Eviction, type RecordKind, type StorageErrorCode, type Store } from './store.js';

export interface StorageStatus {
  state: 'ok' | 'failing';
  code: StorageErrorCode | null;
  message: string | null;
  /** wall time the failure began (ISO) */
  since: string | null;
  /** telemetry not stored during the current (or last) failure */
  droppedTelemetry: number;
  /** events dropped from the memory queue because it was full */
  droppedEvents: number;
  /** events waiting in memory for the store */
  pendingEvents: number;
}

export interface StorageGuardOptions {
  now: () => number;
  mono: () => number;
  logger: Logger;
  maxPendingEvents?: number;
  retryMs?: number;
}

export class StorageGuard extends EventEmitter {
  private failing: { code: StorageErrorCode; message: string; since: number } | undefined;
  private lastTry = -Infinity;
  private pending: string[] = [];
  private dropped = { telemetry: 0, events: 0 };
  readonly totals = { failures: 0, droppedTelemetry: 0, droppedEvents: 0 };
  private readonly maxPending: number;
  private readonly retryMs: number;

  constructor(
    private readonly store: Store,
    private readonly o: StorageGuardOptions,
  ) {
    super();
    this.maxPending = o.maxPendingEvents ?? 1000;
    this.retryMs = o.retryMs ?? 1000;
  }

  get ok(): boolean {
    return !this.failing;
  }

  status(): StorageStatus {
    const f = this.failing;
    return {
      state: f ? 'failing' : 'ok',
      code: f?.code ?? null,
      message: f?.message ?? null,
      since: f ? new Date(f.since).toISOString() : null,
      droppedTelemetry: this.dropped.telemetry,
      droppedEvents: this.dropped.events,
      pendingEvents: this.pending.length,
    };
  }

  /**
   * Store telemetry. Returns its seq, or undefined when the store is failing (the reading is
   * dropped and counted). `eviction` is what making room took.
   */
  appendTelemetry(body: string, kind: 'telemetry' | 'aggregate' = 'telemetry'): { seq?: number; eviction?: Eviction } {
    const { seqs, eviction } = this.appendMany([body], kind);
    return { seq: seqs[0], eviction };
  }

  /** Store telemetry (or aggregates) in one transaction; all dropped and counted when the store is failing. */
  appendMany(bodies: string[], kind: 'telemetry' | 'aggregate' = 'telemetry'): { seqs: (number | undefined)[]; eviction?: Eviction } {
    const res = this.failing && !this.retryDue() ? undefined : this.write(kind, bodies);
    if (!res) {
      for (let i = 0; i < bodies.length; i++) this.dropTelemetry();
      return { seqs: bodies.map(() => undefined) };
    }
    return res;
  }

  /**
   * Store events. Returns their seqs (undefined for events held in memory while the store fails).
   */
  appendEvents(bodies: string[]): { seqs: (number | undefined)[]; eviction?: Eviction } {
    if (this.failing) {
      this.hold(bodies);
      if (this.retryDue()) this.retry();
      return { seqs: bodies.map(() => undefined) };
    }
    const res = this.write('event', bodies);
    if (!res) {
      this.hold(bodies);
      return { seqs: bodies.map(() => undefined) };
    }
    return res;
  }

  /** Called on the gateway's tick: a failing store is tried again (held events first). */
  tick(): void {
    if (this.failing && this.retryDue()) this.retry();
  }

  /** At shutdown: one last try for the held events; says how many are lost if the store still fails. */
  close(): void {
    if (this.failing && this.pending.length) this.retry();
    if (this.pending.length) this.o.logger.error({ lostEvents: this.pending.length }, `storage: ${this.pending.length} events held in memory could not be stored before shutdown`);
  }

  private retryDue(): boolean {
    return this.o.mono() - this.lastTry >= this.retryMs;
  }

  private retry(): void {
    // a probe: the held events (or nothing) in one transaction
    if (!this.pending.length) {
      this.lastTry = this.o.mono();
      try {
        this.store.setMeta('storage.probe', String(this.o.now()));
        this.recovered();
      } catch (e) {
        this.fail(e);
      }
      return;
    }
    const held = this.pending;
    this.pending = [];
    const res = this.write('event', held);
    if (!res) this.pending = held.concat(this.pending).slice(-this.maxPending);
  }

  /** One write, with one round of making room on a full disk. Undefined: it failed (and the guard says so). */
  private write(kind: RecordKind, bodies: string[]): { seqs: number[]; eviction?: Eviction } | undefined {
    this.lastTry = this.o.mono();
    try {
      const flushed = this.failing && kind !== 'event' && this.pending.length ? this.flushHeld() : true;
      if (!flushed) return undefined;
      const res = this.store.append(kind, bodies);
      this.recovered();
      return res;
    } catch (e) {
      const code = storageErrorCode(e);
      if (!code) throw e;
      if (code === 'disk_full') {
        const room = this.makeRoom();
        if (room) {
          try {
            const res = this.store.append(kind, bodies);
            this.recovered();
            return { seqs: res.seqs, eviction: res.eviction ? addEviction(room, res.eviction) : room };
          } catch (e2) {
            if (!storageErrorCode(e2)) throw e2;
            this.fail(e2);
            return undefined;
          }
        }
      }
      this.fail(e);
      return undefined;
    }
  }

  /** Write the events held in memory (before anything newer). */
  private flushHeld(): boolean {
    const held = this.pending;
    this.pending = [];
    try {
      this.store.append('event', held);
      return true;
    } catch (e) {
      this.pending = held;
      if (!storageErrorCode(e)) throw e;
      this.fail(e);
      return false;
    }
  }

  /** Give up the reserve file and the oldest telemetry; undefined when nothing could be freed. */
  private makeRoom(): Eviction | undefined {
    const released = this.store.releaseReserve();
    try {
      const ev = this.store.makeRoom(512);
      if (ev || released) return ev ?? { telemetry: 0, events: 0, bytes: 0 };
    } catch (e) {
      if (!storageErrorCode(e)) throw e;
    }
    return undefined;
  }

  private hold(bodies: string[]): void {
    this.pending.push(...bodies);
    const over = this.pending.length - this.maxPending;
    if (over > 0) {
      this.pending.splice(0, over);
      this.dropped.events += over;
      this.totals.droppedEvents += over;
    }
  }

  private dropTelemetry(): void {
    this.dropped.telemetry++;
    this.totals.droppedTelemetry++;
  }

  private fail(e: unknown): void {
    const code = storageErrorCode(e) ?? 'storage_error';
    const message = (e as Error).message;
    if (this.failing?.code === code) return;
    const first = !this.failing;
    this.failing = { code, message, since: this.o.now() };
    if (first) {
      this.dropped = { telemetry: 0, events: 0 };
      this.totals.failures++;
    }
    this.o.logger.error({ code, err: message, path: this.store.opts.path }, `storage: ${code}: ${message}; polling and rules go on, telemetry is dropped until the store writes again (${hint(code)})`);
    this.emit('change', this.status());
  }

  private recovered(): void {
    if (!this.failing) return;
    const was = this.status();
    this.failing = undefined;
    this.o.logger.info({ droppedTelemetry: was.droppedTelemetry, droppedEvents: was.droppedEvents }, 'storage: writing again');
    this.store.restoreReserve();
    this.emit('change', { ...this.status(), droppedTelemetry: was.droppedTelemetry, droppedEvents: was.droppedEvents, since: was.since });
  }
}

/** What to do about a storage error, for the log line. */
export function hint(code: StorageErrorCode): string {
  switch (code) {
    case 'disk_full':
      return 'free space on the disk of storage.path, or lower storage.maxMB below the free space';
    case 'read_only':
      return 'the file system of storage.path is read-only or not writable by this user';
    case 'io_error':
      return 'the disk (SD card) reports I/O errors: check it, or move storage.path';
    case 'corrupt':
      return 'the buffer file is damaged: move it aside and restart (a new one is made)';
    case 'cannot_open':
      return 'storage.path cannot be opened as a file: check the path';
    default:
      return 'check the disk of storage.path';
  }
}
