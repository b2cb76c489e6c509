/**
 * The record buffer's table. Records are kept in segments: one row holds consecutive records of one
 * kind (up to SEGMENT_RECORDS and SEGMENT_BYTES), as the UTF-8 bytes that are published (each
 * record with its seq, joined by commas) and the byte length of each record. A segment covers [first, last] and
 * every seq in it is present; cutting a range out of one splits it. Reading a batch is a few rows
 * and building a message is joining their bytes (never decoded into strings and encoded again); an
 * acknowledged batch is deleted as a few rows.
 * (One row per record cost about 1.5 µs a record to read and delete: as much as publishing it.)
 *
 * Seqs are allocated here: they only grow and are never reused, even when every row was deleted
 * (the counter is the newest row's `last`, and `seq.last` in meta once a cut takes the newest).
 * Each append writes new rows; every COMPACT_EVERY appends the rows written since are merged where
 * they are consecutive and of one kind, so a backlog built a second at a time (an outage) still
 * drains in large rows, each record rewritten once.
 */
import type Database from 'better-sqlite3';
import { batchBody, withSeq, type RecordBatch, type RecordKind, type StoredRecord } from './record-buffer.js';

export const KIND_CODE: Record<RecordKind, string> = { telemetry: 't', event: 'e', aggregate: 'a' };
export const KIND_OF: Record<string, RecordKind> = { t: 'telemetry', e: 'event', a: 'aggregate' };
export const SEGMENT_RECORDS = 50;
export const SEGMENT_BYTES = 16 * 1024;
export const COMPACT_EVERY = 64;
/** Bytes of the newest rows kept in memory as well (the live batch is read from there). */
export const TAIL_BYTES = 256 * 1024;

export type { RecordBatch };

interface SegHead {
  first: number;
  last: number;
  kind: string;
  bytes: number;
  lens: string;
}
interface Seg extends SegHead {
  body: Buffer;
}

/** Records' texts as one row: their UTF-8 joined by commas, and each one's byte length. */
function rowOf(texts: string[]): { body: Buffer; lens: string; bytes: number } {
  const body = Buffer.from(texts.join(','));
  // ASCII (the usual reading): bytes are characters; else count each
  const ascii = body.length === texts.reduce((n, t) => n + t.length, 0) + texts.length - 1;
  const lens = ascii ? texts.map((t) => t.length) : texts.map((t) => Buffer.byteLength(t));
  return { body, lens: lens.join(','), bytes: body.length - (texts.length - 1) };
}

const parseLens = (s: string) => s.split(',').map(Number);

/** Offsets of each record in a segment's text. */
function offsets(lens: number[]): number[] {
  const out = new Array<number>(lens.length);
  let at = 0;
  for (let i = 0; i < lens.length; i++) {
    out[i] = at;
    at += lens[i]! + 1;
  }
  return out;
}

/** The bytes and lengths of records [lo, hi] (seqs) of a segment. */
function slice(seg: Seg, lo: number, hi: number): { body: Buffer; lens: number[]; bytes: number } {
  const lens = parseLens(seg.lens);
  const off = offsets(lens);
  const i = lo - seg.first;
  const j = hi - seg.first;
  const part = lens.slice(i, j + 1);
  return { body: seg.body.subarray(off[i], off[j]! + lens[j]!), lens: part, bytes: part.reduce((a, b) => a + b, 0) };
}

/** A record's body without its seq (what was appended). */
function bodyOf(text: string, seq: number): string {
  const head = `{"seq":${seq}`;
  return text.length === head.length + 1 ? '{}' : `{${text.slice(head.length + 1)}`;
}

export class SegmentTable {
  lastSeq = 0;
  /** the counter as meta has it */
  private savedSeq = 0;
  /** rows from here on were written since the last compaction */
  private compactFrom = 0;
  private sinceCompact = 0;
  /**
   * The rows written by the latest appends, oldest first: every row of the table from `tail[0].first`
   * on, as written. The uplink's next batch is usually exactly these (a cycle's records, sent soon
   * after): read from here, not from the file. Anything that deletes or rewrites rows empties it, and
   * so does an append whose transaction fails (`dropTail`).
   */
  private tail: Seg[] = [];
  private tailBytes = 0;
  private readonly st;

  /** `db` has the `segments` and `meta` tables (a writable store creates them and migrates the one-row-per-record table first). */
  constructor(private readonly db: Database.Database) {
    // the segment holding @a (or the first after it) and on: the primary key's index, no scan
    const from = 'FROM segments WHERE first >= (SELECT COALESCE(MAX(first), 0) FROM segments WHERE first <= @a)';
    this.st = {
      since: db.prepare('SELECT first, last, kind, bytes, lens, body FROM segments WHERE first >= ? ORDER BY first LIMIT 512'),
      insert: db.prepare('INSERT INTO segments (first, last, kind, bytes, lens, body) VALUES (?, ?, ?, ?, ?, ?)'),
      after: db.prepare(`SELECT first, last, kind, bytes, lens, body ${from} AND last > @a ORDER BY first LIMIT @n`),
      // the rows' heads only (the body is the last column: its overflow pages are not read)
      heads: db.prepare(`SELECT first, last, kind, bytes, lens ${from} AND last > @a ORDER BY first LIMIT @n`),
      bodies: db.prepare('SELECT body FROM segments WHERE first >= ? AND first <= ? ORDER BY first').pluck(),
      overlap: db.prepare(`SELECT first, last, kind, bytes, lens ${from} AND first <= @b AND last >= @a ORDER BY first`),
      count: db.prepare(`SELECT COALESCE(SUM(MIN(last, @b) - MAX(first, @a) + 1), 0) AS n ${from} AND first <= @b AND last >= @a`).pluck(),
      body: db.prepare('SELECT body FROM segments WHERE first = ?').pluck(),
      del: db.prepare('DELETE FROM segments WHERE first = ?'),
      // whole rows of a span at once (one statement frees them all: about a third cheaper than row by row)
      delSpan: db.prepare('DELETE FROM segments WHERE first >= ? AND first <= ?'),
      oldestOf: db.prepare('SELECT first, last, kind, bytes, lens FROM segments WHERE kind = ? ORDER BY first LIMIT ?'),
      totals: db.prepare('SELECT COALESCE(SUM(last - first + 1), 0) AS n, COALESCE(SUM(bytes), 0) AS b FROM segments'),
      byKind: db.prepare('SELECT kind, SUM(last - first + 1) AS n, MIN(first) AS lo, MAX(last) AS hi FROM segments GROUP BY kind'),
      oldest: db.prepare('SELECT first, CAST(substr(body, 1, 200) AS TEXT) AS head FROM segments ORDER BY first LIMIT 1'),
      maxLast: db.prepare('SELECT COALESCE(MAX(last), 0) FROM segments').pluck(),
      getMeta: db.prepare("SELECT value FROM meta WHERE key = 'seq.last'").pluck(),
      setMeta: db.prepare("INSERT INTO meta (key, value) VALUES ('seq.last', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    };
    this.savedSeq = Number(this.st.getMeta.get() ?? 0);
    this.lastSeq = Math.max(this.savedSeq, Number(this.st.maxLast.get()));
    this.compactFrom = this.lastSeq + 1;
  }

  /** Move a one-row-per-record table (dustgate before segments) into segments, keeping every seq and the seq counter. Call inside a transaction. */
  static migrate(db: Database.Database): void {
    const has = (t: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
    if (!has('records')) return;
    const counter = has('sqlite_sequence') ? Number((db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'records'").pluck().get() as number | undefined) ?? 0) : 0;
    const table = new SegmentTable(db);
    const rows = db.prepare('SELECT seq, kind, body FROM records WHERE seq > ? ORDER BY seq LIMIT 5000').raw(true);
    let run: { code: string; seqs: number[]; texts: string[]; bytes: number } | undefined;
    const flush = () => {
      if (run) {
        const row = rowOf(run.texts);
        table.st.insert.run(run.seqs[0], run.seqs[run.seqs.length - 1], run.code, row.bytes, row.lens, row.body);
      }
      run = undefined;
    };
    for (let after = 0; ; ) {
      const chunk = rows.all(after) as [number, string, string][];
      if (!chunk.length) break;
      for (const [seq, code, body] of chunk) {
        const text = withSeq({ seq, kind: KIND_OF[code] ?? 'telemetry', body });
        if (!run || run.code !== code || run.seqs[run.seqs.length - 1] !== seq - 1 || run.seqs.length >= SEGMENT_RECORDS || run.bytes + text.length > SEGMENT_BYTES) flush();
        run ??= { code, seqs: [], texts: [], bytes: 0 };
        run.seqs.push(seq);
        run.texts.push(text);
        run.bytes += Buffer.byteLength(text);
      }
      after = chunk[chunk.length - 1]![0];
    }
    flush();
    db.exec('DROP TABLE records');
    table.st.setMeta.run(String(Math.max(counter, Number(table.st.maxLast.get()))));
  }

  /** Write records (call inside a transaction); returns their seqs and UTF-8 bytes. */
  append(kind: RecordKind, bodies: string[]): { seqs: number[]; bytes: number } {
    const code = KIND_CODE[kind];
    const n = bodies.length;
    const seqs = new Array<number>(n);
    const texts = new Array<string>(n);
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const seq = ++this.lastSeq;
      seqs[i] = seq;
      texts[i] = withSeq({ seq, kind, body: bodies[i]! });
    }
    let i = 0;
    while (i < n) {
      let j = i;
      let b = 0;
      while (j < n && j - i < SEGMENT_RECORDS && (j === i || b + texts[j]!.length <= SEGMENT_BYTES)) b += texts[j++]!.length;
      const row = rowOf(texts.slice(i, j));
      this.st.insert.run(seqs[i], seqs[j - 1], code, row.bytes, row.lens, row.body);
      this.keep({ first: seqs[i]!, last: seqs[j - 1]!, kind: code, bytes: row.bytes, lens: row.lens, body: row.body });
      bytes += row.bytes;
      i = j;
    }
    if (++this.sinceCompact >= COMPACT_EVERY) this.compact();
    return { seqs, bytes };
  }

  /** A row just written joins the tail; the oldest leave it past TAIL_BYTES. */
  private keep(row: Seg): void {
    this.tail.push(row);
    this.tailBytes += row.body.length;
    while (this.tailBytes > TAIL_BYTES && this.tail.length > 1) this.tailBytes -= this.tail.shift()!.body.length;
  }

  /** Forget the rows held in memory (a transaction that wrote them failed; rows were deleted or rewritten). */
  dropTail(): void {
    this.tail = [];
    this.tailBytes = 0;
  }

  /** Run the transaction that appends: if it fails at any step (its commit too), the rows kept in memory are not in the file. */
  appending<T>(txn: () => T): T {
    try {
      return txn();
    } catch (e) {
      this.dropTail();
      throw e;
    }
  }

  /**
   * Rows of [from, to] are being deleted: the tail's oldest rows that lie wholly inside go (an ack of
   * what it sent: the live case); any other row of the tail touched, and it is dropped. Only a prefix
   * goes, so a delete that is rolled back leaves the tail still holding every row after its first.
   */
  private trimTail(from: number, to: number): void {
    const t = this.tail;
    let i = 0;
    while (i < t.length && t[i]!.first >= from && t[i]!.last <= to) this.tailBytes -= t[i++]!.body.length;
    if (i) this.tail = t.slice(i);
    if (this.tail.some((r) => r.first <= to && r.last >= from)) this.dropTail();
  }

  /** The tail's rows holding seqs after `afterSeq`, if the tail holds every such row; else undefined. */
  private tailAfter(afterSeq: number): Seg[] | undefined {
    const t = this.tail;
    if (!t.length || t[0]!.first > afterSeq + 1) return undefined;
    let i = 0;
    while (i < t.length && t[i]!.last <= afterSeq) i++;
    return t.slice(i);
  }

  /** Merge the rows written since the last compaction where consecutive and of one kind (call inside a transaction). */
  compact(): number {
    this.sinceCompact = 0;
    const rows = this.st.since.all(this.compactFrom) as Seg[];
    let merged = 0;
    let group: Seg[] = [];
    const close = () => {
      if (group.length > 1) {
        for (const r of group) this.st.del.run(r.first);
        const g = group;
        this.st.insert.run(g[0]!.first, g[g.length - 1]!.last, g[0]!.kind, g.reduce((a, r) => a + r.bytes, 0), g.map((r) => r.lens).join(','), batchBody({ parts: g.map((r) => r.body) }));
        merged += g.length - 1;
      }
    };
    let n = 0;
    let bytes = 0;
    for (const r of rows) {
      const prev = group[group.length - 1];
      const rn = r.last - r.first + 1;
      if (prev && r.kind === prev.kind && r.first === prev.last + 1 && n + rn <= SEGMENT_RECORDS && bytes + r.bytes <= SEGMENT_BYTES) {
        group.push(r);
        n += rn;
        bytes += r.bytes;
        continue;
      }
      close();
      group = [r];
      n = rn;
      bytes = r.bytes;
    }
    close();
    if (merged) this.dropTail();
    // the last group may still grow with the next appends
    if (group.length) this.compactFrom = group[0]!.first;
    return merged;
  }

  /** The next batch after `afterSeq`: consecutive records of one kind, at most `max`, as pieces of bytes. */
  batch(afterSeq: number, max: number, fromFile = false): RecordBatch | undefined {
    // which rows: their heads (from the tail, or stepped one at a time in the file); then the bodies of exactly those rows
    const tail = fromFile ? undefined : this.tailAfter(afterSeq);
    const take: { r: SegHead; lo: number; hi: number }[] = [];
    let code: string | undefined;
    let count = 0;
    for (const r of tail ?? (this.st.heads.iterate({ a: afterSeq, n: Math.max(1, max) }) as IterableIterator<SegHead>)) {
      code ??= r.kind;
      if (r.kind !== code) break;
      const lo = Math.max(r.first, afterSeq + 1);
      let hi = r.last;
      if (count + (hi - lo + 1) > max) {
        if (count > 0) break; // whole rows where it can: the acks then delete whole rows
        hi = lo + max - 1;
      }
      take.push({ r, lo, hi });
      count += hi - lo + 1;
      if (count >= max) break;
    }
    if (!count) return undefined;
    const bodies = tail ? take.map((t) => (t.r as Seg).body) : (this.st.bodies.all(take[0]!.r.first, take[take.length - 1]!.r.first) as Buffer[]);
    const parts: Buffer[] = [];
    let bytes = 0;
    take.forEach(({ r, lo, hi }, i) => {
      if (lo === r.first && hi === r.last) {
        parts.push(bodies[i]!);
        bytes += r.bytes;
      } else {
        const s = slice({ ...r, body: bodies[i]! }, lo, hi);
        parts.push(s.body);
        bytes += s.bytes;
      }
    });
    return { kind: KIND_OF[code!]!, first: take[0]!.lo, last: take[take.length - 1]!.hi, count, bytes, parts };
  }

  /** Records after `afterSeq`, oldest first, one at a time. */
  *records(afterSeq = 0, rowsAtOnce = 64): Generator<StoredRecord> {
    for (let after = afterSeq; ; ) {
      const rows = this.st.after.all({ a: after, n: rowsAtOnce }) as Seg[];
      if (!rows.length) return;
      for (const r of rows) {
        const lens = parseLens(r.lens);
        const off = offsets(lens);
        const kind = KIND_OF[r.kind]!;
        for (let i = 0; i < lens.length; i++) {
          const seq = r.first + i;
          if (seq <= after) continue;
          yield { seq, kind, body: bodyOf(r.body.toString('utf8', off[i], off[i]! + lens[i]!), seq) };
        }
      }
      after = rows[rows.length - 1]!.last;
    }
  }

  /** Delete the records of [from, to] (cutting segments at the edges); returns how many and their text bytes. */
  cut(from: number, to: number): { count: number; bytes: number } {
    this.trimTail(from, to);
    // the newest record is going: keep the counter where a restart finds it
    if (to >= this.lastSeq && this.savedSeq < this.lastSeq) {
      this.st.setMeta.run(String(this.lastSeq));
      this.savedSeq = this.lastSeq;
    }
    let count = 0;
    let bytes = 0;
    // whole rows are deleted as one span (they lie between the edges); an edge row cut inside is split
    let span: [number, number] | undefined;
    for (const r of this.st.overlap.all({ a: from, b: to }) as SegHead[]) {
      const lo = Math.max(from, r.first);
      const hi = Math.min(to, r.last);
      count += hi - lo + 1;
      if (lo === r.first && hi === r.last) {
        bytes += r.bytes;
        if (span) span[1] = r.first;
        else span = [r.first, r.first];
        continue;
      }
      const seg: Seg = { ...r, body: this.st.body.get(r.first) as Buffer };
      bytes += slice(seg, lo, hi).bytes;
      this.st.del.run(r.first);
      for (const [a, b] of [
        [r.first, lo - 1],
        [hi + 1, r.last],
      ] as const) {
        if (a > b) continue;
        const s = slice(seg, a, b);
        this.st.insert.run(a, b, r.kind, s.bytes, s.lens.join(','), s.body);
      }
    }
    if (span) this.st.delSpan.run(span[0], span[1]);
    return { count, bytes };
  }

  /** Records held with a seq in [from, to]. */
  count(from: number, to: number): number {
    return Number(this.st.count.get({ a: from, b: to }));
  }

  /** The oldest segments of a kind, each with its records' lengths. */
  oldest(code: string, rows: number): { first: number; last: number; lens: number[] }[] {
    return (this.st.oldestOf.all(code, rows) as SegHead[]).map((r) => ({ first: r.first, last: r.last, lens: parseLens(r.lens) }));
  }

  totals(): { n: number; b: number } {
    return this.st.totals.get() as { n: number; b: number };
  }

  byKind(): { kind: string; n: number; lo: number; hi: number }[] {
    return this.st.byKind.all() as { kind: string; n: number; lo: number; hi: number }[];
  }

  /** The oldest record's seq and the start of its text (for its time). */
  oldestRecord(): { seq: number; head: string } | undefined {
    const r = this.st.oldest.get() as { first: number; head: string } | undefined;
    return r && { seq: r.first, head: r.head };
  }
}
