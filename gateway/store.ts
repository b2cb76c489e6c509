/**
 * The store: every reading and event gets its `seq` in SQLite (WAL) before anything is published,
 * and leaves only when the broker acknowledged it (or when the cap evicts it, counted).
 *
 * `seq` is an AUTOINCREMENT rowid: strictly increasing, never reused, surviving restarts even after
 * every row was deleted. Bodies are stored as the JSON text that is published, without the seq,
 * which is spliced in at publish time.
 */
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

export type RecordKind = 'telemetry' | 'event';

export interface ConfigVersion {
  version: number;
  ts: string;
  source: 'file' | 'remote' | 'rollback';
  requestId?: string | null;
  /** sha256 of the site file this version grew from: a changed file starts a new line of versions */
  baseHash: string;
  /** the site config (as written, before the preset) as JSON */
  config: string;
  note?: string | null;
}
const KIND_CODE: Record<RecordKind, string> = { telemetry: 't', event: 'e' };
const KIND_OF: Record<string, RecordKind> = { t: 'telemetry', e: 'event' };

export interface StoredRecord {
  seq: number;
  kind: RecordKind;
  /** JSON object text without the seq */
  body: string;
}

export interface StoreOptions {
  path: string;
  maxMB: number;
  durability?: 'normal' | 'full';
  readonly?: boolean;
}

export interface Eviction {
  telemetry: number;
  events: number;
  bytes: number;
}

/** Bytes counted per row beside its body (key, kind, index entry): the cap is on these totals. */
const ROW_OVERHEAD = 32;

export class Store {
  readonly db: Database.Database;
  private bytes = 0;
  private readonly capBytes: number;
  private readonly stmts;
  readonly evicted = { telemetry: 0, events: 0 };

  constructor(readonly opts: StoreOptions) {
    if (!opts.readonly) mkdirSync(path.dirname(path.resolve(opts.path)), { recursive: true });
    this.db = new Database(opts.path, { readonly: !!opts.readonly, fileMustExist: !!opts.readonly });
    if (!opts.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${opts.durability === 'full' ? 'FULL' : 'NORMAL'}`);
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        -- minute/hour/day aggregates for HJ 212 back-fill: never evicted with the buffer, kept 35+ days
        CREATE TABLE IF NOT EXISTS aggregates (
          period TEXT NOT NULL, start TEXT NOT NULL, device TEXT NOT NULL, metric TEXT NOT NULL,
          mean REAL, min REAL, max REAL, count INTEGER NOT NULL, flag TEXT NOT NULL,
          PRIMARY KEY (period, start, device, metric));
        -- applied configs (the site file, then remote changes): the last 20 are kept
        CREATE TABLE IF NOT EXISTS config_versions (
          version INTEGER PRIMARY KEY, ts TEXT NOT NULL, source TEXT NOT NULL, request_id TEXT,
          base_hash TEXT NOT NULL, config TEXT NOT NULL, note TEXT);
        -- request ids of remote messages already seen (replays are refused)
        CREATE TABLE IF NOT EXISTS remote_requests (request_id TEXT PRIMARY KEY, ts INTEGER NOT NULL);
      `);
    }
    this.capBytes = opts.maxMB * 1024 * 1024;
    const db = this.db;
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
    this.recount();
    this.evicted.telemetry = Number(this.meta('evicted.telemetry') ?? 0);
    this.evicted.events = Number(this.meta('evicted.events') ?? 0);
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
    const eviction = this.bytes > this.capBytes ? this.evict() : undefined;
    return { seqs, eviction };
  }

  /** Evict down to 90 % of the cap: oldest telemetry first, then oldest events. */
  evict(): Eviction {
    const target = this.capBytes * 0.9;
    const ev: Eviction = { telemetry: 0, events: 0, bytes: 0 };
    this.db.transaction(() => {
      for (const kind of ['t', 'e'] as const) {
        while (this.bytes > target) {
          const rows = this.stmts.oldestOf.all(kind, 256) as { seq: number; len: number }[];
          if (!rows.length) break;
          for (const r of rows) {
            if (this.bytes <= target) break;
            this.stmts.delSeq!.run(r.seq);
            this.bytes -= r.len + ROW_OVERHEAD;
            ev.bytes += r.len + ROW_OVERHEAD;
            if (kind === 't') ev.telemetry++;
            else ev.events++;
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
  ack(from: number, to: number, known?: { count: number; bytes: number }): number {
    if (known && this.deferAcks) {
      // acks arriving together are deleted together, in one transaction, right after this tick
      this.pendingAcks.push({ from, to, ...known });
      if (!this.ackFlush) this.ackFlush = setImmediate(() => this.flushAcks());
      return known.count;
    }
    if (known) {
      const n = this.stmts.del!.run(from, to).changes;
      if (n === known.count) this.bytes -= known.bytes + n * ROW_OVERHEAD;
      else this.recount();
      return n;
    }
    const r = this.stmts.range.get(from, to) as { n: number; b: number };
    if (!r.n) return 0;
    this.stmts.del!.run(from, to);
    this.bytes -= r.b + r.n * ROW_OVERHEAD;
    return r.n;
  }

  /** Records still held with a seq in [from, to]. */
  countRange(from: number, to: number): number {
    this.flushAcks();
    return (this.stmts.range.get(from, to) as { n: number }).n;
  }

  private pendingAcks: { from: number; to: number; count: number; bytes: number }[] = [];
  private ackFlush: NodeJS.Immediate | undefined;
  /** Coalesce acks (the uplink's case); direct calls delete at once. */
  deferAcks = false;

  /** Delete every acknowledged range queued so far (one transaction). */
  flushAcks(): void {
    if (this.ackFlush) clearImmediate(this.ackFlush);
    this.ackFlush = undefined;
    const acks = this.pendingAcks;
    if (!acks.length || !this.db.open) return;
    this.pendingAcks = [];
    this.db.transaction(() => {
      for (const a of acks) {
        const n = this.stmts.del!.run(a.from, a.to).changes;
        if (n === a.count) this.bytes -= a.bytes + n * ROW_OVERHEAD;
        else this.recount();
      }
    })();
  }

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
      oldestSeq: oldest?.seq ?? null,
      oldestTs,
      lastSeq,
      bytes: this.bytes,
      capBytes: this.capBytes,
      fileBytes,
      evicted: { ...this.evicted },
    };
  }

  get depth(): number {
    this.flushAcks();
    return (this.db.prepare('SELECT COUNT(*) AS n FROM records').get() as { n: number }).n;
  }

  // ---------------------------------------------------------------- aggregates (kept apart from the buffer)

  saveAggregates(rows: { period: string; start: string; device: string; metric: string; mean: number | null; min: number | null; max: number | null; count: number; flag: string }[]): void {
    if (!rows.length) return;
    const ins = this.db.prepare(
      'INSERT OR REPLACE INTO aggregates (period, start, device, metric, mean, min, max, count, flag) VALUES (@period, @start, @device, @metric, @mean, @min, @max, @count, @flag)',
    );
    this.db.transaction(() => {
      for (const r of rows) ins.run(r);
    })();
  }

  /** Aggregates of a period with start in [from, to] (ISO), oldest first. */
  aggregates(period: string, from: string, to: string, device?: string) {
    return this.db
      .prepare(`SELECT period, start, device, metric, mean, min, max, count, flag FROM aggregates WHERE period = ? AND start >= ? AND start <= ?${device ? ' AND device = ?' : ''} ORDER BY start, device, metric`)
      .all(...(device ? [period, from, to, device] : [period, from, to])) as { period: string; start: string; device: string; metric: string; mean: number | null; min: number | null; max: number | null; count: number; flag: string }[];
  }

  /** Drop aggregates that started before `before` (ISO): at least 35 days are kept. */
  pruneAggregates(before: string): number {
    return this.db.prepare('DELETE FROM aggregates WHERE start < ?').run(before).changes;
  }

  // ---------------------------------------------------------------- config versions

  latestConfig(): ConfigVersion | undefined {
    return this.db.prepare('SELECT version, ts, source, request_id AS requestId, base_hash AS baseHash, config, note FROM config_versions ORDER BY version DESC LIMIT 1').get() as ConfigVersion | undefined;
  }

  configHistory(limit = 20): ConfigVersion[] {
    return this.db.prepare('SELECT version, ts, source, request_id AS requestId, base_hash AS baseHash, config, note FROM config_versions ORDER BY version DESC LIMIT ?').all(limit) as ConfigVersion[];
  }

  /** Record an applied config; versions only grow; the last `keep` stay. */
  addConfigVersion(v: Omit<ConfigVersion, 'version' | 'ts'> & { ts?: string }): number {
    const last = (this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM config_versions').get() as { v: number }).v;
    const version = last + 1;
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO config_versions (version, ts, source, request_id, base_hash, config, note) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(version, v.ts ?? new Date().toISOString(), v.source, v.requestId ?? null, v.baseHash, v.config, v.note ?? null);
      this.db.prepare('DELETE FROM config_versions WHERE version <= ?').run(version - 20);
    })();
    return version;
  }

  // ---------------------------------------------------------------- remote request ids

  /** True if `id` was not seen before (and remembers it); forgets ids older than `keepMs`. */
  rememberRequest(id: string, now: number, keepMs: number): boolean {
    this.db.prepare('DELETE FROM remote_requests WHERE ts < ?').run(now - keepMs);
    return this.db.prepare('INSERT OR IGNORE INTO remote_requests (request_id, ts) VALUES (?, ?)').run(id, now).changes === 1;
  }

  close(): void {
    this.flushAcks();
    if (this.db.open) this.db.close();
  }
}

/** The published text of a stored record: the body with its seq first. */
export function withSeq(r: StoredRecord): string {
  return r.body.length > 2 ? `{"seq":${r.seq},${r.body.slice(1)}` : `{"seq":${r.seq}}`;
}
