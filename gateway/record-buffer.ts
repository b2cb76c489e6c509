/**
 * The record buffer: readings and events, each with a `seq` that only grows, kept until every uplink
 * that takes records has acknowledged them (or the cap evicts them, counted). Uplinks read it
 * through their own cursor (`nextBatch(after)`) and acknowledge ranges themselves.
 *
 * Two implementations pass the same contract suite (test/unit/record-buffer.test.ts): the SQLite
 * store (gateway/store.ts), and `MemoryRecordBuffer` below (for tools and tests that need no file).
 */

/** Readings, events, and closed aggregates (P/aggregates). Eviction takes telemetry, then aggregates, then events; aggregates count as telemetry in `Eviction`. */
export type RecordKind = 'telemetry' | 'event' | 'aggregate';

export interface StoredRecord {
  seq: number;
  kind: RecordKind;
  /** JSON object text without the seq */
  body: string;
}

/** Records ready to publish: their published texts (`withSeq`) as UTF-8, in pieces to be joined with commas (`batchBody`). */
export interface RecordBatch {
  kind: RecordKind;
  first: number;
  last: number;
  count: number;
  /** the records' UTF-8 bytes (without the commas) */
  bytes: number;
  /** whole records each: one or more, in order */
  parts: Buffer[];
}

const COMMA = Buffer.from(',');
/** `parts` joined with commas, between `head` and `tail` (one copy: what a publisher sends). */
export function batchBody(b: Pick<RecordBatch, 'parts'>, head?: Buffer, tail?: Buffer): Buffer {
  const list: Buffer[] = head ? [head] : [];
  b.parts.forEach((p, i) => (i ? list.push(COMMA, p) : list.push(p)));
  if (tail) list.push(tail);
  return list.length === 1 ? list[0]! : Buffer.concat(list);
}

export interface Eviction {
  telemetry: number;
  events: number;
  bytes: number;
}

export interface RecordBuffer {
  /** Write records and return their seqs; past the cap the oldest telemetry goes first (events only when no telemetry is left). */
  append(kind: RecordKind, bodies: string[]): { seqs: number[]; eviction?: Eviction };
  /**
   * The next batch after `afterSeq`: consecutive records of one kind, in seq order, at most `max`.
   * Every record with a seq inside [first, last] of the batch is in it, so a range ack is exact.
   */
  nextBatch(afterSeq: number, max: number): StoredRecord[];
  /** The same batch as the bytes to publish: the records (each with its seq) joined by commas. */
  nextText(afterSeq: number, max: number): RecordBatch | undefined;
  /** A consumer (an uplink) takes records: from now on a record leaves only when every consumer has acknowledged it. */
  addConsumer(name: string): void;
  /** A consumer is gone: what every remaining consumer acknowledged leaves now. */
  removeConsumer(name: string): void;
  /**
   * `consumer` acknowledged the records of [from, to]; returns how many left the buffer.
   * `known` is the batch as it was read (count and body bytes), a hint for the size accounting.
   */
  ack(from: number, to: number, known?: { count: number; bytes: number }, consumer?: string): number;
  /** Records still held with a seq in [from, to]. */
  countRange(from: number, to: number): number;
  /** Records held. */
  readonly depth: number;
  /** Every held record, oldest first. */
  iterate(): Iterable<StoredRecord>;
  /** Drop the oldest telemetry to make room (a full disk); undefined when there was none. */
  makeRoom(records?: number): Eviction | undefined;
  /** Evicted so far (kept across restarts where the implementation persists). */
  readonly evicted: { telemetry: number; events: number };
}

export function addEviction(a: Eviction | undefined, b: Eviction): Eviction {
  if (!a) return b;
  return { telemetry: a.telemetry + b.telemetry, events: a.events + b.events, bytes: a.bytes + b.bytes };
}

/** The published text of a stored record: the body with its seq first. */
export function withSeq(r: StoredRecord): string {
  return r.body.length > 2 ? `{"seq":${r.seq},${r.body.slice(1)}` : `{"seq":${r.seq}}`;
}

/** Records read one by one (`nextBatch`) as a batch to publish. */
export function batchOf(records: StoredRecord[]): RecordBatch | undefined {
  if (!records.length) return undefined;
  const texts = records.map(withSeq);
  const body = Buffer.from(texts.join(','));
  return { kind: records[0]!.kind, first: records[0]!.seq, last: records[records.length - 1]!.seq, count: records.length, bytes: body.length - (texts.length - 1), parts: [body] };
}

/** Bytes counted per record beside its body (key, kind, index entry): the cap is on these totals. */
export const ROW_OVERHEAD = 32;

type Range = [number, number];

/**
 * Who acknowledged what, when more than one consumer takes records: per consumer, merged ranges of
 * acknowledged seqs; a range leaves the buffer once it is in every consumer's list.
 */
export class AckLedger {
  private readonly acked = new Map<string, Range[]>();

  get size(): number {
    return this.acked.size;
  }

  add(name: string): void {
    if (!this.acked.has(name)) this.acked.set(name, []);
  }

  /** Drop a consumer; returns the ranges every remaining consumer has acknowledged (now free to go). */
  remove(name: string): Range[] {
    this.acked.delete(name);
    return this.release();
  }

  /** `name` acknowledged [from, to]; returns the ranges every consumer has now acknowledged. */
  record(name: string, from: number, to: number): Range[] {
    const list = this.acked.get(name);
    if (!list) return [];
    this.acked.set(name, merge([...list, [from, to]]));
    return this.release();
  }

  private release(): Range[] {
    const lists = [...this.acked.values()];
    if (!lists.length) return [];
    let common = lists[0]!;
    for (const l of lists.slice(1)) common = intersect(common, l);
    if (common.length) for (const [k, l] of this.acked) this.acked.set(k, subtract(l, common));
    return common;
  }
}

function merge(list: Range[]): Range[] {
  const s = list.sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const r of s) {
    const last = out.at(-1);
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

function intersect(a: Range[], b: Range[]): Range[] {
  const out: Range[] = [];
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const lo = Math.max(a[i]![0], b[j]![0]);
    const hi = Math.min(a[i]![1], b[j]![1]);
    if (lo <= hi) out.push([lo, hi]);
    if (a[i]![1] < b[j]![1]) i++;
    else j++;
  }
  return out;
}

function subtract(a: Range[], b: Range[]): Range[] {
  let out = a;
  for (const [lo, hi] of b) out = out.flatMap(([x, y]): Range[] => (y < lo || x > hi ? [[x, y]] : ([x < lo ? [x, lo - 1] : undefined, y > hi ? [hi + 1, y] : undefined].filter(Boolean) as Range[])));
  return out;
}

/** A record buffer in memory, with the same cap, eviction order and acknowledgement rules as the store. */
export class MemoryRecordBuffer implements RecordBuffer {
  private records: StoredRecord[] = [];
  private lastSeq = 0;
  private bytes = 0;
  private readonly ledger = new AckLedger();
  readonly evicted = { telemetry: 0, events: 0 };

  constructor(private readonly capBytes = Infinity) {}

  append(kind: RecordKind, bodies: string[]): { seqs: number[]; eviction?: Eviction } {
    const seqs = bodies.map((body) => {
      this.records.push({ seq: ++this.lastSeq, kind, body });
      this.bytes += body.length + ROW_OVERHEAD;
      return this.lastSeq;
    });
    if (this.bytes <= this.capBytes) return { seqs };
    const ev: Eviction = { telemetry: 0, events: 0, bytes: 0 };
    for (const k of ['telemetry', 'aggregate', 'event'] as const) {
      for (let i = 0; i < this.records.length && this.bytes > this.capBytes * 0.9; ) {
        const r = this.records[i]!;
        if (r.kind !== k) {
          i++;
          continue;
        }
        this.records.splice(i, 1);
        this.take(r, ev);
      }
    }
    return { seqs, eviction: ev };
  }

  private take(r: StoredRecord, ev: Eviction): void {
    const n = r.body.length + ROW_OVERHEAD;
    this.bytes -= n;
    ev.bytes += n;
    if (r.kind !== 'event') ev.telemetry++, this.evicted.telemetry++;
    else ev.events++, this.evicted.events++;
  }

  nextBatch(afterSeq: number, max: number): StoredRecord[] {
    const out: StoredRecord[] = [];
    for (const r of this.records) {
      if (r.seq <= afterSeq) continue;
      if (out.length >= max || (out.length && r.kind !== out[0]!.kind)) break;
      out.push(r);
    }
    return out;
  }

  nextText(afterSeq: number, max: number): RecordBatch | undefined {
    return batchOf(this.nextBatch(afterSeq, max));
  }

  addConsumer(name: string): void {
    this.ledger.add(name);
  }

  removeConsumer(name: string): void {
    for (const [a, b] of this.ledger.remove(name)) this.drop(a, b);
  }

  ack(from: number, to: number, _known?: { count: number; bytes: number }, consumer?: string): number {
    if (this.ledger.size <= 1) return this.drop(from, to);
    let n = 0;
    for (const [a, b] of this.ledger.record(consumer ?? '', from, to)) n += this.drop(a, b);
    return n;
  }

  private drop(from: number, to: number): number {
    const before = this.records.length;
    this.records = this.records.filter((r) => {
      if (r.seq < from || r.seq > to) return true;
      this.bytes -= r.body.length + ROW_OVERHEAD;
      return false;
    });
    return before - this.records.length;
  }

  countRange(from: number, to: number): number {
    return this.records.filter((r) => r.seq >= from && r.seq <= to).length;
  }

  get depth(): number {
    return this.records.length;
  }

  iterate(): Iterable<StoredRecord> {
    return [...this.records];
  }

  makeRoom(records = 256): Eviction | undefined {
    const ev: Eviction = { telemetry: 0, events: 0, bytes: 0 };
    this.records = this.records.filter((r) => {
      if (r.kind !== 'telemetry' || ev.telemetry >= records) return true;
      this.take(r, ev);
      return false;
    });
    return ev.telemetry ? ev : undefined;
  }
}
