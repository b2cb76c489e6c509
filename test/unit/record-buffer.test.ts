/**
 * The record-buffer contract (gateway/record-buffer.ts): every implementation passes the same
 * suite — the SQLite store (a real file) and the in-memory buffer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AckLedger, batchBody, MemoryRecordBuffer, withSeq, type RecordBuffer, type StoredRecord } from '../../gateway/record-buffer.js';
import { Store } from '../../gateway/store.js';
import { Backoff } from '../../drivers/reopen.js';
import { tempDir } from '../helpers/gateway-rig.js';

const opened: Store[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

const impls: [string, (capBytes?: number) => RecordBuffer][] = [
  [
    'SQLite store',
    (capBytes = 64 * 1024 * 1024) => {
      const s = new Store({ path: path.join(tempDir('rb'), 'b.db'), maxMB: capBytes / 1024 / 1024 });
      opened.push(s);
      return s;
    },
  ],
  ['in memory', (capBytes) => new MemoryRecordBuffer(capBytes)],
];

const body = (i: number, pad = 0) => JSON.stringify({ ts: '2026-06-01T00:00:00.000Z', i, pad: 'x'.repeat(pad) });
const seqsOf = (b: RecordBuffer) => [...b.iterate()].map((r) => r.seq);

describe.each(impls)('record buffer contract: %s', (_name, make) => {
  it('seqs only grow, across kinds; bodies come back as written', () => {
    const b = make();
    const a = b.append('telemetry', [body(1), body(2)]).seqs;
    const e = b.append('event', [body(3)]).seqs;
    const c = b.append('telemetry', [body(4)]).seqs;
    const all = [...a, ...e, ...c];
    expect(all).toEqual([...all].sort((x, y) => x - y));
    expect(new Set(all).size).toBe(4);
    expect([...b.iterate()].map((r) => JSON.parse(r.body).i)).toEqual([1, 2, 3, 4]);
    expect(b.depth).toBe(4);
  });

  it('a batch is consecutive records of one kind, at most max, after the cursor', () => {
    const b = make();
    b.append('telemetry', [body(1), body(2), body(3)]);
    b.append('event', [body(4)]);
    b.append('telemetry', [body(5)]);
    const first = b.nextBatch(0, 2);
    expect(first.map((r) => JSON.parse(r.body).i)).toEqual([1, 2]);
    const second = b.nextBatch(first.at(-1)!.seq, 10);
    expect(second.map((r) => [r.kind, JSON.parse(r.body).i])).toEqual([['telemetry', 3]]);
    const third = b.nextBatch(second.at(-1)!.seq, 10);
    expect(third.map((r) => [r.kind, JSON.parse(r.body).i])).toEqual([['event', 4]]);
    expect(b.nextBatch(third[0]!.seq, 10).map((r) => JSON.parse(r.body).i)).toEqual([5]);
    expect(withSeq(third[0]!)).toBe(`{"seq":${third[0]!.seq},"ts":"2026-06-01T00:00:00.000Z","i":4,"pad":""}`);
  });

  it('with one consumer an ack removes the range; countRange counts what is left', () => {
    const b = make();
    b.addConsumer('mqtt');
    const { seqs } = b.append('telemetry', [body(1), body(2), body(3)]);
    expect(b.countRange(seqs[0]!, seqs[2]!)).toBe(3);
    expect(b.ack(seqs[0]!, seqs[1]!, undefined, 'mqtt')).toBe(2);
    expect(b.countRange(seqs[0]!, seqs[2]!)).toBe(1);
    expect(seqsOf(b)).toEqual([seqs[2]]);
  });

  it('with two consumers a record leaves only when both acknowledged it, whatever the order and ranges', () => {
    const b = make();
    b.addConsumer('mqtt');
    b.addConsumer('archive');
    const { seqs } = b.append('telemetry', [1, 2, 3, 4, 5, 6].map((i) => body(i)));
    const [s1, s2, s3, s4, s5, s6] = seqs as [number, number, number, number, number, number];
    expect(b.ack(s1, s4, undefined, 'mqtt')).toBe(0);
    expect(b.depth).toBe(6);
    expect(b.ack(s3, s6, undefined, 'archive')).toBe(2); // s3, s4: both have them
    expect(seqsOf(b)).toEqual([s1, s2, s5, s6]);
    expect(b.ack(s1, s2, undefined, 'archive')).toBe(2);
    expect(b.ack(s5, s5, undefined, 'mqtt')).toBe(1);
    expect(seqsOf(b)).toEqual([s6]);
    // a consumer that goes away no longer holds anything back
    b.removeConsumer('mqtt');
    expect(b.depth).toBe(0);
  });

  it('over the cap the oldest telemetry goes first, events only when no telemetry is left; counted', () => {
    const b = make(40_000);
    b.append('event', [body(0, 500)]);
    let evicted = 0;
    for (let i = 1; i <= 100; i++) evicted += b.append('telemetry', [body(i, 1000)]).eviction?.telemetry ?? 0;
    expect(evicted).toBeGreaterThan(50);
    expect(b.evicted.telemetry).toBe(evicted);
    expect(b.evicted.events).toBe(0);
    const left = [...b.iterate()];
    expect(left[0]!.kind).toBe('event');
    // the newest telemetry stays, the oldest went
    expect(JSON.parse(left.at(-1)!.body).i).toBe(100);
    expect(left.some((r) => JSON.parse(r.body).i === 1)).toBe(false);
    // a full disk: room made from the oldest telemetry only
    const before = b.depth;
    const ev = b.makeRoom(3)!;
    expect(ev.telemetry).toBe(3);
    expect(b.depth).toBe(before - 3);
    expect([...b.iterate()][0]!.kind).toBe('event');
  });

  it('aggregates are records too: their own batches, evicted after telemetry and before events', () => {
    const b = make(12_000);
    b.append('event', [body(0, 400)]);
    const aggs = b.append('aggregate', [body(1, 400), body(2, 400)]).seqs;
    b.append('telemetry', Array.from({ length: 10 }, (_, i) => body(10 + i, 400)));
    expect(b.nextBatch(0, 10).map((r) => r.kind)).toEqual(['event']);
    expect(b.nextBatch(b.nextBatch(0, 10)[0]!.seq, 10).map((r) => r.kind)).toEqual(['aggregate', 'aggregate']);
    // over the cap: every reading goes before an aggregate
    const ev1 = b.append('telemetry', [body(99, 8000)]).eviction!;
    expect(ev1).toMatchObject({ events: 0 });
    expect(ev1.telemetry).toBeGreaterThan(0);
    expect(aggs.every((q) => b.countRange(q, q) === 1)).toBe(true);
    // no telemetry held, over the cap: the oldest aggregates go, the event stays
    const c = make(12_000);
    c.append('event', [body(0, 400)]);
    const [a1] = c.append('aggregate', [body(1, 400), body(2, 400)]).seqs;
    const ev2 = c.append('aggregate', [body(3, 11_000)]).eviction!;
    expect(ev2.events).toBe(0);
    expect(ev2.telemetry).toBeGreaterThan(0); // aggregates count with telemetry
    expect(c.countRange(a1!, a1!)).toBe(0);
    expect([...c.iterate()][0]!.kind).toBe('event');
  });

  it('nextText is the batch as published: the records of [first, last] with their seqs, one kind, at most max, after the cursor', { timeout: 120_000 }, () => {
    // a seeded walk of appends (kinds, sizes, groups), two consumers acknowledging ranges that cut
    // through what was appended together, evictions and reads from every cursor: compared with the
    // records themselves
    let x = 7;
    const rnd = (n: number) => ((x = (x * 1103515245 + 12345) % 2 ** 31), x % n);
    const b = make(400_000);
    b.addConsumer('a');
    b.addConsumer('b');
    let i = 0;
    for (let step = 0; step < 160; step++) {
      const op = rnd(10);
      if (op < 6) {
        const kind = (['telemetry', 'telemetry', 'event', 'aggregate'] as const)[rnd(4)]!;
        b.append(kind, Array.from({ length: 1 + rnd(rnd(5) === 0 ? 120 : 8) }, () => body(++i, rnd(300))));
      } else if (op < 9) {
        const all = [...b.iterate()];
        if (!all.length) continue;
        const lo = all[rnd(all.length)]!.seq;
        b.ack(lo, lo + rnd(40), undefined, rnd(2) ? 'a' : 'b');
      } else b.makeRoom(1 + rnd(5));
      const held: StoredRecord[] = [...b.iterate()];
      const cursors = [0, ...held.map((r) => r.seq)].filter((_, k) => k % 13 === step % 13);
      for (const after of cursors) {
        const max = 1 + rnd(60);
        const t = b.nextText(after, max);
        const next = held.find((r) => r.seq > after);
        if (!next) {
          expect(t).toBeUndefined();
          continue;
        }
        expect(t).toBeDefined();
        const inRange = held.filter((r) => r.seq >= t!.first && r.seq <= t!.last);
        expect(t!.first).toBe(next.seq);
        expect(inRange.every((r) => r.kind === t!.kind)).toBe(true);
        expect(t!.count).toBe(inRange.length);
        expect(t!.count).toBeLessThanOrEqual(max);
        expect(batchBody(t!).toString()).toBe(inRange.map(withSeq).join(','));
        expect(t!.bytes).toBe(Buffer.byteLength(inRange.map(withSeq).join('')));
        expect(b.countRange(t!.first, t!.last)).toBe(t!.count);
      }
    }
    expect(i).toBeGreaterThan(100);
  });

  it('makeRoom with no telemetry held gives nothing and keeps the events', () => {
    const b = make();
    b.append('event', [body(1)]);
    expect(b.makeRoom(10)).toBeUndefined();
    expect(b.depth).toBe(1);
  });
});

describe('the ack ledger', () => {
  it('releases exactly the ranges every consumer holds, once', () => {
    const l = new AckLedger();
    l.add('a');
    l.add('b');
    expect(l.record('a', 1, 10)).toEqual([]);
    expect(l.record('b', 5, 7)).toEqual([[5, 7]]);
    expect(l.record('b', 8, 12)).toEqual([[8, 10]]);
    expect(l.record('a', 11, 11)).toEqual([[11, 11]]);
    expect(l.record('b', 1, 4)).toEqual([[1, 4]]);
    expect(l.remove('b')).toEqual([]);
    expect(l.record('a', 20, 21)).toEqual([[20, 21]]);
  });
});

describe('the upload queue of an aggregates uplink', () => {
  it('each uplink has its own queue; the single hj212_uploads table of earlier versions becomes the hj212 queue', () => {
    const file = path.join(tempDir('uq'), 'b.db');
    const old = new Database(file);
    old.exec("CREATE TABLE hj212_uploads (cn TEXT NOT NULL, start TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (cn, start)); INSERT INTO hj212_uploads VALUES ('2051', '2026-06-01T02:00:00.000Z', 0), ('2051', '2026-06-01T01:59:00.000Z', 1)");
    old.close();
    const s = new Store({ path: file, maxMB: 16 });
    opened.push(s);
    const hj = s.uploads('hj212');
    const other = s.uploads('hj212-housing');
    expect(hj.pending()).toEqual([{ cn: '2051', start: '2026-06-01T02:00:00.000Z' }]);
    expect(other.pending()).toEqual([]);
    other.enqueue([{ cn: '2061', start: '2026-06-01T01:00:00.000Z' }]);
    hj.ack({ cn: '2051', start: '2026-06-01T02:00:00.000Z' });
    expect(hj.next()).toBeUndefined();
    expect(other.next()).toEqual({ cn: '2061', start: '2026-06-01T01:00:00.000Z' });
  });
});

describe('reconnect backoff', () => {
  it('full jitter: each wait is uniform under a ceiling that doubles up to the max, and resets', () => {
    const fixed = (r: number) => new Backoff(1000, 30_000, () => r);
    const top = fixed(0.999_999);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => top.next())).toEqual([999, 1999, 3999, 7999, 15_999, 29_999, 29_999]);
    top.reset();
    expect(top.next()).toBe(999);
    expect(fixed(0).next()).toBe(0);
    // a fleet of 1,000 gateways after the same outage spreads over the whole window, not in lockstep
    const waits = Array.from({ length: 1000 }, () => {
      const b = new Backoff(1000, 30_000);
      for (let i = 0; i < 5; i++) b.next();
      return b.next();
    });
    const buckets = new Array(10).fill(0);
    for (const w of waits) {
      expect(w).toBeGreaterThanOrEqual(0);
      expect(w).toBeLessThan(30_000);
      buckets[Math.floor(w / 3000)]++;
    }
    for (const n of buckets) expect(n).toBeGreaterThan(50); // ~100 per tenth
  });
});
