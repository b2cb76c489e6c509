/**
 * The store: every reading and event gets its `seq` in SQLite (WAL) before anything is published,
 * and leaves only when the broker acknowledged it (or when the cap evicts it, counted).
 *
 * `seq` is an AUTOINCREMENT rowid: strictly increasing, never reused, surviving restarts even after
 * every row was deleted. Bodies are stored as the JSON text that is published, without the seq,
 * which is spliced in at publish time.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { AckLedger, addEviction, ROW_OVERHEAD, type Eviction, type RecordBuffer, type RecordKind, type StoredRecord } from './record-buffer.js';
import { SqliteAggregates, SqliteConfigVersions, SqliteReplayIds, SqliteUploadQueue, type AggregateStore, type ConfigVersions, type ReplayIds, type UploadQueue } from './store-tables.js';

export { addEviction, withSeq, type Eviction, type RecordKind, type StoredRecord } from './record-buffer.js';
export type { AggregateRow, ConfigVersion } from './store-tables.js';

const KIND_CODE: Record<RecordKind, string> = { telemetry: 't', event: 'e', aggregate: 'a' };
const KIND_OF: Record<string, RecordKind> = { t: 'telemetry', e: 'event', a: 'aggregate' };

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
    this.stmts = {
      insert: opts.readonly ? undefined : db.prepare('INSERT INTO records (kind, body) VALUES (?, ?)'),
      after: db.prepare('SELECT seq, kind, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?').raw(true),
      range: db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(length(body)), 0) AS b FROM records WHERE seq BETWEEN ? AND ?'),
      del: opts.readonly ? undefined : db.prepare('DELETE FROM records WHERE seq BETWEEN ? AND ?'),
      oldestOf: db.prepare('SELECT seq, length(body) AS len FROM records WHERE kind = ? ORDER BY seq LIMIT ?'),
      delSeq: opts.readonly ? undefined : db.prepare('DELETE FROM records WHERE seq = ?'),
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
          CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL);
          CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        `);
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

  private appendTx = (kind: RecordKind, bodies: string[]): number[] => {
    const code = KIND_CODE[kind];
    const seqs: number[] = [];
    for (const b of bodies) {
      seqs.push(Number(this.stmts.insert!.run(code, b).lastInsertRowid));
      this.bytes += b.length + ROW_OVERHEAD;
    }
    return seqs;
  };
  private readonly appendMany = (kind: RecordKind, bodies: string[]) => this.db.transaction(this.appendTx)(kind, bodies);

  /**
   * Write records (one transaction) and return their seqs. If the buffer is then over its cap,
   * the oldest telemetry is evicted (events only when no telemetry is left) and reported.
   */
  append(kind: RecordKind, bodies: string[]): { seqs: number[]; eviction?: Eviction } {
    const seqs = bodies.length === 1 ? this.appendTx(kind, bodies) : this.appendMany(kind, bodies);
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
        for (;;) {
          const rows = this.stmts.oldestOf.all(kind, 256) as { seq: number; len: number }[];
          let n = 0;
          for (const r of rows) {
            if (!more(ev)) break;
            this.stmts.delSeq!.run(r.seq);
            this.bytes -= r.len + ROW_OVERHEAD;
            ev.bytes += r.len + ROW_OVERHEAD;
            if (kind !== 'e') ev.telemetry++;
            else ev.events++;
            n++;
          }
          if (n < 256) break; // this kind is used up, or enough went
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
    const rows = this.stmts.after.all(afterSeq, max) as [number, string, string][];
    const out: StoredRecord[] = [];
    const first = rows[0]?.[1];
    for (const r of rows) {
      if (r[1] !== first) break;
      out.push({ seq: r[0], kind: KIND_OF[r[1]]!, body: r[2] });
    }
    return out;
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
      this.pendingAcks.push({ from, to, ...known });
      if (!this.ackFlush) this.ackFlush = setTimeout(() => this.flushAcks(), this.opts.ackDelayMs ?? 0);
      return known.count;
    }
    if (known) {
      const n = this.stmts.del!.run(from, to).changes;
      if (n === known.count) this.bytes -= known.bytes + n * ROW_OVERHEAD;
      else this.recount();
      return n;
    }
    return this.deleteRange(from, to);
  }

  private deleteRange(from: number, to: number): number {
    this.flushAcks();
    const r = this.stmts.range.get(from, to) as { n: number; b: number };
    if (!r.n) return 0;
    this.stmts.del!.run(from, to);
    this.bytes -= r.b + r.n * ROW_OVERHEAD;
    return r.n;
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
    return (this.stmts.range.get(from, to) as { n: number }).n;
  }

  private pendingAcks: { from: number; to: number; count: number; bytes: number }[] = [];
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
        for (const a of acks) {
          const n = this.stmts.del!.run(a.from, a.to).changes;
          if (n === a.count) this.bytes -= a.bytes + n * ROW_OVERHEAD;
          else this.recount();
        }
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
    const t = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(length(body)), 0) AS b FROM records').get() as { n: number; b: number };
    this.bytes = t.b + t.n * ROW_OVERHEAD;
  }

  /** Every buffered record, oldest first (exports). */
  *iterate(batch = 1000): Generator<StoredRecord> {
    let after = 0;
    for (;;) {
      const rows = this.stmts.after.all(after, batch) as [number, string, string][];
      if (!rows.length) return;
      for (const r of rows) yield { seq: r[0], kind: KIND_OF[r[1]]!, body: r[2] };
      after = rows[rows.length - 1]![0];
    }
  }

  stats() {
    const counts = this.db.prepare("SELECT kind, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM records GROUP BY kind").all() as { kind: string; n: number; lo: number; hi: number }[];
    const of = (k: string) => counts.find((c) => c.kind === k);
    const oldest = this.db.prepare('SELECT seq, body FROM records ORDER BY seq LIMIT 1').get() as { seq: number; body: string } | undefined;
    const lastSeq = (this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'records'").get() as { seq: number } | undefined)?.seq ?? 0;
    let oldestTs: string | null = null;
    if (oldest) oldestTs = /"ts":"([^"]+)"/.exec(oldest.body)?.[1] ?? null;
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
    return (this.db.prepare('SELECT COUNT(*) AS n FROM records').get() as { n: number }).n;
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
