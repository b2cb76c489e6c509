/**
 * Group commit for telemetry and aggregates (SD card wear): readings are written together, one
 * transaction per `storage.commitMs` (default 1 s), instead of one per reading — each SQLite commit
 * writes whole pages to the WAL, so a reading a time costs several KB. The control path never waits
 * for it (the rules saw the reading already); a reading gets its seq, is counted and handed to the
 * uplinks when its group is written. Events are written at once, and flush the group first, so
 * seqs keep the order things happened in. A crash loses at most `commitMs` of readings, plus the
 * cycle held (below, at most HOLD_MS; events none); `commitMs: 0` writes each reading on its own.
 *
 * Before that, a poll cycle's readings are held (`hold`) and taken into the group together when the
 * poller has no read in flight (`cycleEnd`), at most HOLD_MS after the first: the line's next request
 * goes out as soon as a reply is in, and the data path (page values, aggregates, the telemetry JSON)
 * runs once per cycle on warm code instead of between every two requests (the load bench: about
 * 8 % less CPU, docs/benchmarks.md). The control path never waits for it: outputs and
 * rules see each reading at once. Events flush the held readings first (seq order is unchanged).
 */
import type { Reading } from './reading.js';
import type { Eviction } from './store.js';

export interface BatchHost {
  readonly storage: { appendMany(bodies: string[], kind: 'telemetry' | 'aggregate'): { seqs: (number | undefined)[]; eviction?: Eviction } };
  readonly health: { overflow(ev: Eviction): void };
  readonly counters: { readings: number };
  emit(event: 'reading', r: Reading & { seq?: number }): boolean;
  listenerCount(event: 'reading'): number;
  pumpUplinks(): void;
  /** runs a data-path job: its failure is logged, never thrown (a timer must not take the process down) */
  dataPath(what: string, job: () => void): void;
}

interface Pending {
  kind: 'telemetry' | 'aggregate';
  body: string;
  reading?: Reading;
}

/** Past this many waiting records the group is written at once (a burst must not grow memory). */
const MAX_PENDING = 1000;
/** The longest a reading is held for its poll cycle to end (a line that is never idle still moves on). */
export const HOLD_MS = 250;

export class RecordBatch {
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private held: (() => void)[] = [];
  private holdTimer: NodeJS.Timeout | undefined;
  private readonly afterCycle: (() => void)[] = [];
  /** true while a cycle's held readings run (what they close can be reported once, after them) */
  inCycle = false;

  constructor(
    private readonly host: BatchHost,
    private commitMs: number,
  ) {}

  setCommitMs(ms: number): void {
    this.cycleEnd(); // what is held goes first (with 0, later readings are written at once)
    this.commitMs = ms;
  }

  add(kind: 'telemetry' | 'aggregate', body: string, reading?: Reading): void {
    this.pending.push({ kind, body, reading });
    if (this.commitMs <= 0 || this.pending.length >= MAX_PENDING) this.flush();
    else this.timer ??= setTimeout(() => this.host.dataPath('store', () => this.flush()), this.commitMs);
  }

  /** A reading's data path, run when its poll cycle ends (`commitMs: 0`: at once). */
  hold(job: () => void): void {
    if (this.commitMs <= 0) return this.host.dataPath('reading', job);
    this.held.push(job);
    if (this.held.length >= MAX_PENDING) this.cycleEnd();
    else this.holdTimer ??= setTimeout(() => this.cycleEnd(), HOLD_MS);
  }

  /** The poller has no read in flight: the held readings' data path, in the order they came. */
  cycleEnd(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    const jobs = this.held;
    if (!jobs.length) return;
    this.held = [];
    this.inCycle = true;
    try {
      for (const job of jobs) this.host.dataPath('reading', job);
    } finally {
      this.inCycle = false;
    }
    for (const fn of this.afterCycle) this.host.dataPath('cycle', fn);
  }

  /** Run `fn` after each cycle's held readings (the minutes they closed are saved in one go). */
  onCycleDone(fn: () => void): void {
    this.afterCycle.push(fn);
  }

  /** Write what waits, now (before events, at shutdown): held readings first. */
  flush(): void {
    this.cycleEnd();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const list = this.pending;
    if (!list.length) return;
    this.pending = [];
    // one transaction per run of one kind (readings, with an aggregate run now and then)
    for (let i = 0; i < list.length; ) {
      let j = i;
      while (j < list.length && list[j]!.kind === list[i]!.kind) j++;
      const run = list.slice(i, j);
      const { seqs, eviction } = this.host.storage.appendMany(
        run.map((p) => p.body),
        run[0]!.kind,
      );
      // the copy with its seq is made only for a listener (tests, embedders): the gateway itself has none
      const listened = this.host.listenerCount('reading') > 0;
      run.forEach((p, k) => {
        if (!p.reading) return;
        this.host.counters.readings++;
        if (listened) this.host.emit('reading', { ...p.reading, seq: seqs[k] });
      });
      if (eviction) this.host.health.overflow(eviction);
      i = j;
    }
    this.host.pumpUplinks();
  }
}
