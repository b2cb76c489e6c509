/**
 * The store: every reading and event gets its `seq` in SQLite (WAL) before anything is published,
 * and leaves only when the broker acknowledged it (or when the cap evicts it, counted).
 *
 * `seq` is strictly increasing, never reused, surviving restarts even after every record was
 * deleted. Records are stored in segments as the text that is published, seq included
 * (gateway/segments.ts).
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { AckLedger, addEviction, ROW_OVERHEAD, type Eviction, type RecordBatch, type RecordBuffer, type RecordKind, type StoredRecord } from './record-buffer.js';
import { SegmentTable } from './segments.js';
import { SqliteAggregates, SqliteConfigVersions, SqliteReplayIds, SqliteUploadQueue, type AggregateStore, type ConfigVersions, type ReplayIds, type UploadQueue } from './store-tables.js';

export { addEviction, withSeq, type Eviction, type RecordKind, type StoredRecord } from './record-buffer.js';
export type { RecordBatch } from './record-buffer.js';
export type { AggregateRow, ConfigVersion } from './store-tables.js';


export interface StoreOptions {
  path: string;
  maxMB: number;
  durability?: 'normal' | 'full';
  readonly?: boolean;
  /** acknowledged records are deleted together this long after the first ack (one transaction: SD card wear) */
  ackDelayMs?: number;
}

/**
 * Below this cap the files' fixed part (schema, aggregates, config versions: about 64 KiB) would
 * take most of it, so only the records' own bytes are counted; from here up the cap bounds the
 * database and WAL files themselves.
 */
export const PHYSICAL_CAP_MIN = 256 * 1024;

/** What went wrong with the disk under the store, from SQLite's error code. */
export type StorageErrorCode = 'disk_full' | 'io_error' | 'read_only' | 'corrupt' | 'cannot_open' | 'storage_error';

/** The storage error code of an exception thrown by better-sqlite3 (or a file system call), if it is one. */
export function storageErrorCode(e: unknown): StorageErrorCode | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') return 'disk_full';
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO') return 'io_error';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return 'read_only';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'corrupt';
  if (code.startsWith('SQLITE_CANTOPEN') || code === 'EISDIR' || code === 'ENOTDIR') return 'cannot_open';
  if (code.startsWith('SQLITE_')) return 'storage_error';
  return undefined;
}

/** The WAL's share of the cap: checkpointed and truncated to this (64 KiB .. 4 MiB). */
export function walBudgetBytes(capBytes: number): number {
  return Math.min(4 * 1024 * 1024, Math.max(64 * 1024, Math.floor(capBytes * 0.1)));
}

/**
 * The SQLite file: the record buffer itself, and the other jobs' tables behind their interfaces
 * (`aggs`, `versions`, `replay`, `uploads(name)`).
 */
export class Store implements RecordBuffer {
  readonly db: Database.Database;
  private bytes = 0;
  private readonly capBytes: number;
  /** WAL bytes allowed for (see walBudgetBytes); 0 for a read-only store */
  readonly walBudget: number;
  /** Database pages in use may not grow past this (0: the cap counts record bytes only). */
  private readonly pageCap: number;
  private pageSize = 4096;
  private sinceCheck = 0;
  private readonly stmts;
  private readonly table: SegmentTable;
  readonly evicted = { telemetry: 0, events: 0 };
  readonly aggs: AggregateStore;
  readonly versions: ConfigVersions;
  readonly replay: ReplayIds;
  /** uplinks taking records; with two or more, a record leaves when all have acknowledged it */
  private readonly ledger = new AckLedger();

  /** A file of zeros beside the database, given up when the disk is full so the store can still delete and open. */
  readonly reservePath: string;
  private readonly reserveBytes: number;

  constructor(readonly opts: StoreOptions) {
    if (!opts.readonly) mkdirSync(path.dirname(path.resolve(opts.path)), { recursive: true });
    this.reservePath = `${opts.path}.reserve`;
    this.reserveBytes = opts.maxMB * 1024 * 1024 >= PHYSICAL_CAP_MIN ? 256 * 1024 : 64 * 1024;
    this.capBytes = opts.maxMB * 1024 * 1024;
    this.walBudget = opts.readonly ? 0 : walBudgetBytes(this.capBytes);
    // the WAL can pass its budget by up to half of it between checkpoints: leave it 1.5 budgets
    this.pageCap = this.capBytes >= PHYSICAL_CAP_MIN ? this.capBytes - 1.5 * this.walBudget : 0;
    let db: Database.Database;
    try {
      db = this.openDb();
    } catch (e) {
      // a full disk: the reserve makes the room to open (the WAL index and a schema change need a few pages)
      // (SQLite says "disk I/O error" when it cannot size the WAL index on a full disk)
      const code = storageErrorCode(e);
      if (opts.readonly || (code !== 'disk_full' && code !== 'io_error') || !this.releaseReserve()) throw e;
      db = this.openDb();
    }
    this.db = db;
    if (opts.readonly && !db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'segments'").get()) {
      db.close();
      throw new Error(`${opts.path} was written by an older dustgate: start the gateway once (it upgrades the buffer), then read it`);
    }
    this.table = new SegmentTable(db);
    this.stmts = {
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
      setMeta: opts.readonly ? undefined : db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
    this.aggs = new SqliteAggregates(db);
    this.versions = new SqliteConfigVersions(db);
    this.replay = new SqliteReplayIds(db);
    this.recount();
    if (!opts.readonly) this.restoreReserve();
    this.evicted.telemetry = Number(this.meta('evicted.telemetry') ?? 0);
    this.evicted.events = Number(this.meta('evicted.events') ?? 0);
  }

  /** Open the database (WAL, the cap's checkpoint policy, the schema); a directory or a non-database fails here. */
  private openDb(): Database.Database {
    const opts = this.opts;
    const db = new Database(opts.path, { readonly: !!opts.readonly, fileMustExist: !!opts.readonly });
    try {
      db.pragma('schema_version', { simple: true });
      if (!opts.readonly) {
        db.pragma('journal_mode = WAL');
        db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
        // the WAL is part of the cap: checkpoint at half its budget, and cut it back to the budget after
        this.pageSize = Number(db.pragma('page_size', { simple: true }));
        db.pragma(`wal_autocheckpoint = ${Math.max(8, Math.floor(this.walBudget / this.pageSize / 2))}`);
        db.pragma(`journal_size_limit = ${this.walBudget}`);
        db.exec(`
          CREATE TABLE IF NOT EXISTS segments (first INTEGER PRIMARY KEY, last INTEGER NOT NULL, kind TEXT NOT NULL, bytes INTEGER NOT NULL, lens TEXT NOT NULL, body BLOB NOT NULL);
          CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        `);
        db.transaction(() => SegmentTable.migrate(db))();
      }
    } catch (e) {
      db.close();
      throw e;
    }
    return db;
  }

  /** Give up the reserve file (a full disk); true if there was one. */
  releaseReserve(): boolean {
    try {
      unlinkSync(this.reservePath);
      return true;
    } catch {
      return false;
    }
  }

  /** Put the reserve back (best effort: on a full disk it waits for the next recovery). */
  restoreReserve(): void {
    if (existsSync(this.reservePath)) return;
    let fd: number | undefined;
    try {
      fd = openSync(this.reservePath, 'w');
      writeSync(fd, Buffer.alloc(this.reserveBytes));
      closeSync(fd);
    } catch {
      if (fd !== undefined) closeSync(fd);
      try {
        unlinkSync(this.reservePath);
      } catch {
        /* nothing there */
      }
    }
  }

  meta(key: string): string | undefined {
    return (this.stmts.getMeta.get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmts.setMeta!.run(key, value);
  }

  private appendTxn: ((kind: RecordKind, bodies: string[]) => number[]) | undefined;
  private get appendTx(): (kind: RecordKind, bodies: string[]) => number[] {
    return (this.appendTxn ??= this.db.transaction((kind: RecordKind, bodies: string[]) => this.appendRows(kind, bodies)));
  }

  private appendRows(kind: RecordKind, bodies: string[]): number[] {
    const at = this.table.lastSeq;
    try {
      const r = this.table.append(kind, bodies);
      this.bytes += r.bytes + bodies.length * ROW_OVERHEAD;
      return r.seqs;
    } catch (e) {
      this.table.lastSeq = at; // rolled back: those seqs were not used
      throw e;
    }
  }

  /**
   * Write records (one transaction) and return their seqs. If the buffer is then over its cap,
   * the oldest telemetry is evicted (events only when no telemetry is left) and reported.
   */
  append(kind: RecordKind, bodies: string[]): { seqs: number[]; eviction?: Eviction } {
    const seqs = this.table.appending(() => this.appendTx(kind, bodies));
    let eviction = this.bytes > this.capBytes ? this.evict() : undefined;
    // the files: look at the pages in use when the records could be near the cap (every 32 writes)
    if (this.pageCap && this.bytes > this.pageCap * 0.4 && (++this.sinceCheck >= 32 || this.bytes > this.pageCap * 0.8)) {
      this.sinceCheck = 0;
      if (this.usedBytes() > this.pageCap * 0.95) eviction = addEviction(eviction, this.evictPages(this.pageCap * 0.85));
    }
    return { seqs, eviction };
  }

  /** Bytes of database pages in use (free pages are reused before the file grows). */
  usedBytes(): number {
    const pages = Number(this.db.pragma('page_count', { simple: true }));
    const free = Number(this.db.pragma('freelist_count', { simple: true }));
    return (pages - free) * this.pageSize;
  }

  /** Evict down to 90 % of the cap: oldest telemetry first, then oldest events. */
  evict(target = this.capBytes * 0.9): Eviction {
    return this.evictWhile(() => this.bytes > target, ['t', 'a', 'e']);
  }

  /** Evict oldest telemetry until the pages in use are at most `target` bytes (events stay: the record cap handles them). */
  private evictPages(target: number): Eviction {
    let total: Eviction | undefined;
    for (let i = 0; i < 10_000 && this.usedBytes() > target; i++) {
      const ev = this.evictWhile((e) => e.telemetry < 128, ['t']);
      total = addEviction(total, ev);
      if (!ev.telemetry) break;
    }
    return total ?? { telemetry: 0, events: 0, bytes: 0 };
  }

  /**
   * Free room on a full disk: drop the oldest telemetry (its pages are reused by the next writes).
   * Returns the eviction, or undefined when nothing could be dropped.
   */
  makeRoom(records = 256): Eviction | undefined {
    const ev = this.evictWhile((e) => e.telemetry < records, ['t']);
    return ev.telemetry ? ev : undefined;
  }

  /** Delete the oldest records of `kinds` (in that order) while `more(evicted so far)` says so; counted and kept in meta. */
  private evictWhile(more: (ev: Eviction) => boolean, kinds: ('t' | 'a' | 'e')[]): Eviction {
    const ev: Eviction = { telemetry: 0, events: 0, bytes: 0 };
    this.db.transaction(() => {
      for (const kind of kinds) {
        for (let more_ = true; more_; ) {
          const segs = this.table.oldest(kind, 64);
          if (!segs.length) break; // this kind is used up
          for (const seg of segs) {
            // record by record, as `more` asks; a segment taken in part is cut
            let k = 0;
            for (; k < seg.lens.length && more(ev); k++) {
              ev.bytes += seg.lens[k]! + ROW_OVERHEAD;
              if (kind !== 'e') ev.telemetry++;
              else ev.events++;
            }
            if (k) {
              const cut = this.table.cut(seg.first, seg.first + k - 1);
              this.bytes -= cut.bytes + cut.count * ROW_OVERHEAD;
            }
            if (k < seg.lens.length) {
              more_ = false; // enough went
              break;
            }
          }
        }
      }
      this.evicted.telemetry += ev.telemetry;
      this.evicted.events += ev.events;
      this.setMeta('evicted.telemetry', String(this.evicted.telemetry));
      this.setMeta('evicted.events', String(this.evicted.events));
    })();
    return ev;
  }

  /**
   * The next batch after `afterSeq`: consecutive records of one kind, in seq order, at most `max`.
   * Every record with a seq inside [first, last] of the batch is in it, so a range ack is exact.
   */
  nextBatch(afterSeq: number, max: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    for (const r of this.table.records(afterSeq)) {
      if (out.length >= max || (out.length && r.kind !== out[0]!.kind)) break;
      out.push(r);
    }
    return out;
  }

  /** The next batch as the text to publish (the uplink's way: whole segments joined, no record split apart). */
  nextText(afterSeq: number, max: number): RecordBatch | undefined {
    // nothing was written after it (the uplink asks once more after each batch it took): no query
    if (afterSeq >= this.table.lastSeq) return undefined;
    return this.table.batch(afterSeq, max);
  }

  /**
   * The broker acknowledged [from, to]: drop those records. `known` is the batch as it was sent
   * (count and body bytes); if eviction took some of it meanwhile, the size is counted again.
   */
  ack(from: number, to: number, known?: { count: number; bytes: number }, consumer?: string): number {
    if (this.ledger.size > 1) {
      let n = 0;
      for (const [a, b] of this.ledger.record(consumer ?? '', from, to)) n += this.deleteRange(a, b);
      return n;
    }
    if (known && this.deferAcks) {
      // acks arriving together are deleted together, in one transaction, ackDelayMs after the first
      this.pendingAcks.push({ from, to });
      if (!this.ackFlush) this.ackFlush = setTimeout(() => this.flushAcks(), this.opts.ackDelayMs ?? 0);
      return known.count;
    }
    return this.deleteRange(from, to);
  }

  private deleteRange(from: number, to: number): number {
    this.flushAcks();
    return this.db.transaction(() => this.cutRange(from, to))();
  }

  private cutRange(from: number, to: number): number {
    const r = this.table.cut(from, to);
    this.bytes -= r.bytes + r.count * ROW_OVERHEAD;
    return r.count;
  }

  addConsumer(name: string): void {
    this.ledger.add(name);
  }

  removeConsumer(name: string): void {
    const ranges = this.ledger.remove(name);
    if (this.ledger.size > 0) for (const [a, b] of ranges) this.deleteRange(a, b);
  }

  /** The upload queue of an uplink that sends periods (HJ 212). */
  uploads(uplink: string): UploadQueue {
    return new SqliteUploadQueue(this.db, uplink);
  }

  /** Records still held with a seq in [from, to]. */
  countRange(from: number, to: number): number {
    this.flushAcks();
    return this.table.count(from, to);
  }

  private pendingAcks: { from: number; to: number }[] = [];
  private ackFlush: NodeJS.Timeout | undefined;
  /** Coalesce acks (the uplink's case); direct calls delete at once. */
  deferAcks = false;

  /** Delete every acknowledged range queued so far (one transaction). */
  flushAcks(): void {
    if (this.ackFlush) clearTimeout(this.ackFlush);
    this.ackFlush = undefined;
    const acks = this.pendingAcks;
    if (!acks.length || !this.db.open) return;
    this.pendingAcks = [];
    try {
      this.db.transaction(() => {
        for (const [from, to] of joinRanges(acks)) this.cutRange(from, to);
      })();
    } catch (e) {
      // a full disk can refuse even a delete (the WAL must grow): keep the acks and try again later
      if (!storageErrorCode(e)) throw e;
      this.pendingAcks = acks.concat(this.pendingAcks);
      if (!this.ackRetry) this.ackRetry = setTimeout(() => {
        this.ackRetry = undefined;
        this.flushAcks();
      }, 1000);
      this.ackRetry.unref?.();
      return;
    }
  }
  private ackRetry: NodeJS.Timeout | undefined;

  private recount(): void {
    const t = this.table.totals();
    this.bytes = t.b + t.n * ROW_OVERHEAD;
  }

  /** Every buffered record, oldest first (exports). */
  iterate(): Generator<StoredRecord> {
    return this.table.records(0);
  }

  stats() {
    const counts = this.table.byKind();
    const of = (k: string) => counts.find((c) => c.kind === k);
    const oldest = this.table.oldestRecord();
    const lastSeq = this.table.lastSeq;
    let oldestTs: string | null = null;
    if (oldest) oldestTs = /"ts":"([^"]+)"/.exec(oldest.head)?.[1] ?? null;
    let fileBytes = 0;
    for (const suffix of ['', '-wal', '-shm'])
      try {
        fileBytes += statSync(this.opts.path + suffix).size;
      } catch {
        /* no such part */
      }
    return {
      path: this.opts.path,
      telemetry: of('t')?.n ?? 0,
      events: of('e')?.n ?? 0,
      aggregates: of('a')?.n ?? 0,
      oldestSeq: oldest?.seq ?? null,
      oldestTs,
      lastSeq,
      bytes: this.bytes,
      capBytes: this.capBytes,
      fileBytes,
      walBudget: this.walBudget,
      evicted: { ...this.evicted },
    };
  }

  get depth(): number {
    this.flushAcks();
    return this.table.totals().n;
  }

  close(): void {
    if (this.ackRetry) clearTimeout(this.ackRetry);
    try {
      this.flushAcks();
    } catch {
      /* closing anyway: unflushed acks are sent again after a restart (at least once) */
    }
    if (this.db.open) this.db.close();
  }
}

/** Ranges in seq order, adjacent and overlapping ones joined (acks of consecutive batches become one delete). */
export function joinRanges(ranges: readonly { from: number; to: number }[]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last[1] + 1) last[1] = Math.max(last[1], r.to);
    else out.push([r.from, r.to]);
  }
  return out;
}
