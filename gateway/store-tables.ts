/**
 * The store's jobs beside the record buffer, each behind its own interface: aggregates (kept apart
 * from the buffer, never evicted with it), config versions, remote request ids, and the upload
 * queues of uplinks that send periods rather than records (HJ 212). One SQLite file holds them all
 * (gateway/store.ts opens it); each SQLite implementation here creates its own table.
 */
import type Database from 'better-sqlite3';
import type { Aggregate } from './aggregates.js';

// ---------------------------------------------------------------- aggregates

/** An aggregate as stored: its start as ISO time (see `Aggregate` in gateway/aggregates.ts). */
export type AggregateRow = Omit<Aggregate, 'period' | 'start' | 'valid' | 'flag'> & { period: string; start: string; flag: string };

export interface AggregateStore {
  save(rows: AggregateRow[]): void;
  /** Aggregates of a period with start in [from, to] (ISO), oldest first. */
  range(period: string, from: string, to: string, device?: string): AggregateRow[];
  /** Drop aggregates that started before `before` (ISO). */
  prune(before: string): number;
}

export class SqliteAggregates implements AggregateStore {
  constructor(private readonly db: Database.Database) {
    // minute/hour/day aggregates for HJ 212 back-fill: kept 35+ days
    if (!db.readonly)
      db.exec(`CREATE TABLE IF NOT EXISTS aggregates (
        period TEXT NOT NULL, start TEXT NOT NULL, device TEXT NOT NULL, metric TEXT NOT NULL,
        mean REAL, min REAL, max REAL, count INTEGER NOT NULL, flag TEXT NOT NULL,
        PRIMARY KEY (period, start, device, metric))`);
  }

  /** prepared once: each device's closed minute is saved on its own (fifty devices: fifty saves a minute) */
  private saveTx: ((rows: AggregateRow[]) => void) | undefined;

  save(rows: AggregateRow[]): void {
    if (!rows.length) return;
    if (!this.saveTx) {
      const ins = this.db.prepare('INSERT OR REPLACE INTO aggregates (period, start, device, metric, mean, min, max, count, flag) VALUES (@period, @start, @device, @metric, @mean, @min, @max, @count, @flag)');
      this.saveTx = this.db.transaction((list: AggregateRow[]) => {
        for (const r of list) ins.run(r);
      });
    }
    this.saveTx(rows);
  }

  range(period: string, from: string, to: string, device?: string): AggregateRow[] {
    return this.db
      .prepare(`SELECT period, start, device, metric, mean, min, max, count, flag FROM aggregates WHERE period = ? AND start >= ? AND start <= ?${device ? ' AND device = ?' : ''} ORDER BY start, device, metric`)
      .all(...(device ? [period, from, to, device] : [period, from, to])) as AggregateRow[];
  }

  prune(before: string): number {
    return this.db.prepare('DELETE FROM aggregates WHERE start < ?').run(before).changes;
  }
}

// ---------------------------------------------------------------- config versions

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

export interface ConfigVersions {
  latest(): ConfigVersion | undefined;
  history(limit?: number): ConfigVersion[];
  /** Record an applied config; versions only grow; the last 20 stay. */
  add(v: Omit<ConfigVersion, 'version' | 'ts'> & { ts?: string }): number;
}

const VERSION_COLUMNS = 'version, ts, source, request_id AS requestId, base_hash AS baseHash, config, note';

export class SqliteConfigVersions implements ConfigVersions {
  constructor(private readonly db: Database.Database) {
    if (!db.readonly)
      db.exec(`CREATE TABLE IF NOT EXISTS config_versions (
        version INTEGER PRIMARY KEY, ts TEXT NOT NULL, source TEXT NOT NULL, request_id TEXT,
        base_hash TEXT NOT NULL, config TEXT NOT NULL, note TEXT)`);
  }

  latest(): ConfigVersion | undefined {
    return this.db.prepare(`SELECT ${VERSION_COLUMNS} FROM config_versions ORDER BY version DESC LIMIT 1`).get() as ConfigVersion | undefined;
  }

  history(limit = 20): ConfigVersion[] {
    return this.db.prepare(`SELECT ${VERSION_COLUMNS} FROM config_versions ORDER BY version DESC LIMIT ?`).all(limit) as ConfigVersion[];
  }

  add(v: Omit<ConfigVersion, 'version' | 'ts'> & { ts?: string }): number {
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
}

// ---------------------------------------------------------------- remote request ids

export interface ReplayIds {
  /** True if `id` was not seen within `keepMs` (and remembers it). */
  remember(id: string, now: number, keepMs: number): boolean;
}

export class SqliteReplayIds implements ReplayIds {
  private lastPrune = -Infinity;
  constructor(private readonly db: Database.Database) {
    if (!db.readonly)
      db.exec(`CREATE TABLE IF NOT EXISTS remote_requests (request_id TEXT PRIMARY KEY, ts INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS remote_requests_ts ON remote_requests (ts)`);
  }

  remember(id: string, now: number, keepMs: number): boolean {
    // forgetting is by the indexed ts, and at most once a minute (not on every message of a flood)
    if (Math.abs(now - this.lastPrune) >= 60_000) {
      this.lastPrune = now;
      this.db.prepare('DELETE FROM remote_requests WHERE ts < ?').run(now - keepMs);
    }
    // an id seen longer ago than keepMs (not yet pruned) counts as new
    return this.db.prepare('INSERT INTO remote_requests (request_id, ts) VALUES (?, ?) ON CONFLICT (request_id) DO UPDATE SET ts = excluded.ts WHERE remote_requests.ts < ?').run(id, now, now - keepMs).changes === 1;
  }
}

// ---------------------------------------------------------------- upload queues (uplinks that send periods)

export interface Upload {
  /** what is sent (HJ 212: the CN of the period) */
  cn: string;
  /** ISO start of the period */
  start: string;
}

/** One uplink's queue of periods to send: its own cursor over the aggregates, acknowledged by itself. */
export interface UploadQueue {
  enqueue(list: Upload[]): void;
  /** The oldest upload not acknowledged yet. */
  next(): Upload | undefined;
  ack(u: Upload): void;
  pending(): Upload[];
  /** Forget acknowledged uploads that started before `before` (ISO). */
  prune(before: string): void;
}

export class SqliteUploadQueue implements UploadQueue {
  constructor(
    private readonly db: Database.Database,
    /** the uplink's name: each uplink has its own queue */
    private readonly uplink: string,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS uploads (uplink TEXT NOT NULL, cn TEXT NOT NULL, start TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (uplink, cn, start))`);
    // the one HJ 212 queue of earlier versions becomes the queue of the uplink named hj212
    const old = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'hj212_uploads'").get();
    if (old)
      db.transaction(() => {
        db.exec("INSERT OR IGNORE INTO uploads (uplink, cn, start, acked) SELECT 'hj212', cn, start, acked FROM hj212_uploads");
        db.exec('DROP TABLE hj212_uploads');
      })();
  }

  enqueue(list: Upload[]): void {
    const ins = this.db.prepare('INSERT OR IGNORE INTO uploads (uplink, cn, start) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      for (const u of list) ins.run(this.uplink, u.cn, u.start);
    })();
  }

  next(): Upload | undefined {
    return this.db.prepare('SELECT cn, start FROM uploads WHERE uplink = ? AND acked = 0 ORDER BY start, cn LIMIT 1').get(this.uplink) as Upload | undefined;
  }

  ack(u: Upload): void {
    this.db.prepare('UPDATE uploads SET acked = 1 WHERE uplink = ? AND cn = ? AND start = ?').run(this.uplink, u.cn, u.start);
  }

  pending(): Upload[] {
    return this.db.prepare('SELECT cn, start FROM uploads WHERE uplink = ? AND acked = 0 ORDER BY start, cn').all(this.uplink) as Upload[];
  }

  prune(before: string): void {
    this.db.prepare('DELETE FROM uploads WHERE uplink = ? AND acked = 1 AND start < ?').run(this.uplink, before);
  }
}
