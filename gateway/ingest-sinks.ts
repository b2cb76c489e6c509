/**
 * Where `dustgate ingest` writes: a SQLite file (better-sqlite3, WAL; several consumers may share it)
 * or PostgreSQL (`pg`, loaded only when a postgres:// URL is given). Every table is keyed by
 * (gateway, seq), and every insert skips a key already there, so a message delivered twice (a
 * redelivery after a crash or a broker restart, or a gateway's resend after a lost PUBACK) stores
 * its readings once. A duplicate key whose time differs from the stored row's is not a redelivery:
 * the gateway's store was replaced and its seqs started again; it is counted as a conflict.
 */

export interface TelemetryRow { gateway: string; seq: number; ts: string; device: string; metrics: string; flags: string }
export interface EventRow { gateway: string; seq: number; ts: string; type: string; body: string }
export interface AggregateRow { gateway: string; seq: number; period: string; start: string; device: string; body: string }

export type IngestBatch =
  | { kind: 'telemetry'; rows: TelemetryRow[] }
  | { kind: 'events'; rows: EventRow[] }
  | { kind: 'aggregates'; rows: AggregateRow[] };

export interface WriteResult {
  inserted: number;
  /** already there with the same time: a redelivery, skipped */
  duplicates: number;
  /** already there with another time: the gateway's seqs started again (a replaced store), skipped */
  conflicts: number;
}

export interface IngestSink {
  readonly name: string;
  /** Store one message's rows; resolves once they are durable (committed). */
  write(batch: IngestBatch): Promise<WriteResult>;
  /** Rows per table (what the tests and `--json` summaries read). */
  counts(): Promise<Record<IngestBatch['kind'], number>>;
  close(): Promise<void>;
}

export const TABLES: Record<IngestBatch['kind'], string> = { telemetry: 'dustgate_telemetry', events: 'dustgate_events', aggregates: 'dustgate_aggregates' };

/** The time column of each table: what tells a redelivery (same) from a replaced store (different). */
const TIME_OF = { telemetry: 'ts', events: 'ts', aggregates: 'start' } as const;
const rowTime = (b: IngestBatch, i: number): string => (b.kind === 'aggregates' ? b.rows[i]!.start : b.rows[i]!.ts);

/** Split the rows that were not inserted into redeliveries and conflicts, from the stored times. */
function classify(b: IngestBatch, inserted: Set<string>, stored: Map<string, number>): WriteResult {
  let duplicates = 0;
  let conflicts = 0;
  b.rows.forEach((r, i) => {
    const key = `${r.gateway}\u0000${r.seq}`;
    if (inserted.has(key)) return;
    const at = stored.get(key);
    if (at !== undefined && at !== Date.parse(rowTime(b, i))) conflicts++;
    else duplicates++;
  });
  return { inserted: inserted.size, duplicates, conflicts };
}

export const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

export async function openSink(db: string): Promise<IngestSink> {
  return isPostgresUrl(db) ? PgSink.open(db) : SqliteSink.open(db);
}

export class SqliteSink implements IngestSink {
  readonly name: string;
  private constructor(private readonly db: import('better-sqlite3').Database, file: string) {
    this.name = `sqlite:${file}`;
  }

  static async open(file: string): Promise<SqliteSink> {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 10000'); // another consumer may be writing the same file
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${TABLES.telemetry} (gateway TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, device TEXT NOT NULL, metrics TEXT NOT NULL, flags TEXT NOT NULL, PRIMARY KEY (gateway, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS ${TABLES.events} (gateway TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (gateway, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS ${TABLES.aggregates} (gateway TEXT NOT NULL, seq INTEGER NOT NULL, period TEXT NOT NULL, start TEXT NOT NULL, device TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (gateway, seq)) WITHOUT ROWID;
    `);
    return new SqliteSink(db, file);
  }

  async write(b: IngestBatch): Promise<WriteResult> {
    const inserted = new Set<string>();
    const stored = new Map<string, number>();
    const t = TABLES[b.kind];
    const get = this.db.prepare(`SELECT ${TIME_OF[b.kind]} AS at FROM ${t} WHERE gateway = ? AND seq = ?`).pluck();
    const insert =
      b.kind === 'telemetry'
        ? this.db.prepare(`INSERT OR IGNORE INTO ${t} (gateway, seq, ts, device, metrics, flags) VALUES (@gateway, @seq, @ts, @device, @metrics, @flags)`)
        : b.kind === 'events'
          ? this.db.prepare(`INSERT OR IGNORE INTO ${t} (gateway, seq, ts, type, body) VALUES (@gateway, @seq, @ts, @type, @body)`)
          : this.db.prepare(`INSERT OR IGNORE INTO ${t} (gateway, seq, period, start, device, body) VALUES (@gateway, @seq, @period, @start, @device, @body)`);
    this.db.transaction(() => {
      for (const r of b.rows) {
        const key = `${r.gateway}\u0000${r.seq}`;
        if (insert.run(r).changes > 0) inserted.add(key);
        else stored.set(key, Date.parse(get.get(r.gateway, r.seq) as string));
      }
    }).immediate();
    return classify(b, inserted, stored);
  }

  async counts(): Promise<Record<IngestBatch['kind'], number>> {
    const n = (t: string) => this.db.prepare(`SELECT count(*) FROM ${t}`).pluck().get() as number;
    return { telemetry: n(TABLES.telemetry), events: n(TABLES.events), aggregates: n(TABLES.aggregates) };
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

type PgPool = import('pg').Pool;

export class PgSink implements IngestSink {
  readonly name: string;
  private constructor(private readonly pool: PgPool, url: string) {
    this.name = `postgres:${url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')}`;
  }

  static async open(url: string): Promise<PgSink> {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 10_000 });
    pool.on('error', () => undefined); // an idle connection lost (the server restarted): the next query opens another
    const ddl = `
      CREATE TABLE IF NOT EXISTS ${TABLES.telemetry} (gateway text NOT NULL, seq bigint NOT NULL, ts timestamptz NOT NULL, device text NOT NULL, metrics jsonb NOT NULL, flags jsonb NOT NULL, PRIMARY KEY (gateway, seq));
      CREATE TABLE IF NOT EXISTS ${TABLES.events} (gateway text NOT NULL, seq bigint NOT NULL, ts timestamptz NOT NULL, type text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (gateway, seq));
      CREATE TABLE IF NOT EXISTS ${TABLES.aggregates} (gateway text NOT NULL, seq bigint NOT NULL, period text NOT NULL, start timestamptz NOT NULL, device text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (gateway, seq));
    `;
    try {
      await pool.query(ddl);
    } catch (e) {
      // two consumers creating the tables at the same moment: one of them loses the race, and the tables are there
      if (!['23505', '42P07'].includes((e as { code?: string }).code ?? '')) throw e;
      await pool.query(ddl);
    }
    return new PgSink(pool, url);
  }

  async write(b: IngestBatch): Promise<WriteResult> {
    if (b.rows.length === 0) return { inserted: 0, duplicates: 0, conflicts: 0 };
    const t = TABLES[b.kind];
    const col = <K extends string>(k: K) => b.rows.map((r) => (r as unknown as Record<K, unknown>)[k]);
    // one statement per message: arrays unnested into rows, keys already there skipped
    const q =
      b.kind === 'telemetry'
        ? { text: `INSERT INTO ${t} (gateway, seq, ts, device, metrics, flags) SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::jsonb[], $6::jsonb[]) ON CONFLICT DO NOTHING RETURNING gateway, seq`, values: [col('gateway'), col('seq'), col('ts'), col('device'), col('metrics'), col('flags')] }
        : b.kind === 'events'
          ? { text: `INSERT INTO ${t} (gateway, seq, ts, type, body) SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::jsonb[]) ON CONFLICT DO NOTHING RETURNING gateway, seq`, values: [col('gateway'), col('seq'), col('ts'), col('type'), col('body')] }
          : { text: `INSERT INTO ${t} (gateway, seq, period, start, device, body) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::jsonb[]) ON CONFLICT DO NOTHING RETURNING gateway, seq`, values: [col('gateway'), col('seq'), col('period'), col('start'), col('device'), col('body')] };
    const res = await this.pool.query<{ gateway: string; seq: string }>(q);
    const inserted = new Set(res.rows.map((r) => `${r.gateway}\u0000${r.seq}`));
    const stored = new Map<string, number>();
    if (inserted.size < b.rows.length) {
      // only when something was skipped: the stored times of those keys
      const skipped = b.rows.filter((r) => !inserted.has(`${r.gateway}\u0000${r.seq}`));
      const got = await this.pool.query<{ gateway: string; seq: string; at: Date }>(
        `SELECT t.gateway, t.seq, t.${TIME_OF[b.kind]} AS at FROM ${t} t JOIN unnest($1::text[], $2::bigint[]) AS k(gateway, seq) ON t.gateway = k.gateway AND t.seq = k.seq`,
        [skipped.map((r) => r.gateway), skipped.map((r) => r.seq)],
      );
      for (const r of got.rows) stored.set(`${r.gateway}\u0000${r.seq}`, r.at.getTime());
    }
    return classify(b, inserted, stored);
  }

  async counts(): Promise<Record<IngestBatch['kind'], number>> {
    const n = async (t: string) => Number((await this.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);
    return { telemetry: await n(TABLES.telemetry), events: await n(TABLES.events), aggregates: await n(TABLES.aggregates) };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
