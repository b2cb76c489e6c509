/** The SQLite store on a real file: seq rules, range acks, batching by kind, eviction order, durability settings. */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import Database from 'better-sqlite3';
import { joinRanges, Store, withSeq } from '../../gateway/store.js';
import { batchBody } from '../../gateway/record-buffer.js';
import type { SegmentTable } from '../../gateway/segments.js';
import { tempDir } from '../helpers/gateway-rig.js';

const body = (i: number) => JSON.stringify({ ts: new Date(1_700_000_000_000 + i * 1000).toISOString(), device: 'head', values: { pm10: i }, flags: { pm10: 'N' } });

describe('store', () => {
  it('seq is strictly increasing, survives a restart, and is never reused even after everything was acknowledged', () => {
    const file = path.join(tempDir('store'), 'b.db');
    let s = new Store({ path: file, maxMB: 10 });
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.append('telemetry', [body(1), body(2)]).seqs).toEqual([1, 2]);
    expect(s.append('event', [JSON.stringify({ ts: 'x', type: 'a' })]).seqs).toEqual([3]);
    expect(s.ack(1, 3)).toBe(3);
    s.close();
    s = new Store({ path: file, maxMB: 10 });
    expect(s.depth).toBe(0);
    expect(s.append('telemetry', [body(3)]).seqs).toEqual([4]);
    expect(s.stats().lastSeq).toBe(4);
    s.close();
  });

  it('batches are consecutive records of one kind, in seq order, so a range ack is exact', () => {
    const s = new Store({ path: path.join(tempDir('store'), 'b.db'), maxMB: 10 });
    s.append('telemetry', [body(1), body(2), body(3)]);
    s.append('event', [JSON.stringify({ ts: 'x', type: 'e1' })]);
    s.append('telemetry', [body(4)]);
    const b1 = s.nextBatch(0, 2);
    expect(b1.map((r) => [r.seq, r.kind])).toEqual([[1, 'telemetry'], [2, 'telemetry']]);
    const b2 = s.nextBatch(2, 10);
    expect(b2.map((r) => r.seq)).toEqual([3]);
    expect(s.nextBatch(3, 10).map((r) => [r.seq, r.kind])).toEqual([[4, 'event']]);
    expect(JSON.parse(withSeq(b1[0]!))).toEqual({ seq: 1, ...JSON.parse(body(1)) });
    s.ack(3, 3);
    expect(s.nextBatch(0, 10).map((r) => r.seq)).toEqual([1, 2]);
    s.close();
  });

  it('over the cap: oldest telemetry goes first, events only when no telemetry is left; counts persist', () => {
    const file = path.join(tempDir('store'), 'b.db');
    const s = new Store({ path: file, maxMB: 0.01 }); // 10 KiB
    const ev = s.append('event', [JSON.stringify({ ts: 'x', type: 'first_event', pad: 'e'.repeat(200) })]).seqs[0]!;
    let evicted = 0;
    for (let i = 0; i < 200; i++) evicted += s.append('telemetry', [body(i)]).eviction?.telemetry ?? 0;
    expect(evicted).toBeGreaterThan(0);
    expect(s.evicted).toEqual({ telemetry: evicted, events: 0 });
    const kept = s.nextBatch(0, 1000);
    expect(kept[0]!.seq).toBe(ev); // the event, older than all telemetry, is still first
    const rest = s.nextBatch(ev, 1000);
    expect(rest[0]!.seq).toBe(ev + 1 + evicted); // the oldest telemetry is what went
    // nothing but events: they go too, and are counted
    for (let i = 0; i < 100; i++) s.append('event', [JSON.stringify({ ts: 'x', type: 'e', pad: 'x'.repeat(300) })]);
    expect(s.evicted.events).toBeGreaterThan(0);
    expect(s.stats().telemetry).toBe(0);
    expect(s.evicted.telemetry).toBe(200);
    const counted = { ...s.evicted };
    s.close();
    const again = new Store({ path: file, maxMB: 0.01 });
    expect(again.evicted).toEqual(counted);
    again.close();
  });

  it('a buffer written one row per record (before segments) is moved into segments: every record and seq kept, the counter goes on', () => {
    const file = path.join(tempDir('store'), 'old.db');
    const old = new Database(file);
    old.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL); CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);');
    const ins = old.prepare('INSERT INTO records (kind, body) VALUES (?, ?)');
    for (let i = 1; i <= 130; i++) ins.run(i % 40 === 0 ? 'e' : 't', i % 40 === 0 ? JSON.stringify({ ts: 'x', type: 'e' + i }) : body(i));
    // acknowledged before the upgrade: a gap in the middle and the newest ones (the counter stays at 130)
    old.prepare('DELETE FROM records WHERE seq BETWEEN 50 AND 59 OR seq > 125').run();
    old.close();
    const s = new Store({ path: file, maxMB: 10 });
    const held = [...s.iterate()];
    expect(held.map((r) => r.seq)).toEqual([...Array.from({ length: 49 }, (_, k) => k + 1), ...Array.from({ length: 66 }, (_, k) => k + 60)]);
    expect(held.find((r) => r.seq === 80)).toEqual({ seq: 80, kind: 'event', body: JSON.stringify({ ts: 'x', type: 'e80' }) });
    expect(held.find((r) => r.seq === 7)!.body).toBe(body(7));
    expect(s.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'records'").get()).toBeUndefined();
    expect(s.append('telemetry', [body(131)]).seqs).toEqual([131]);
    expect(s.nextText(45, 500)).toMatchObject({ first: 46, last: 79, count: 24 }); // 46..49 and 60..79 (the gap was acknowledged), up to the event at 80
    expect(s.depth).toBe(116);
    s.close();
  });

  it('records appended one at a time while they wait share rows (the backlog drains in large rows); cuts inside a row keep the rest', () => {
    const s = new Store({ path: path.join(tempDir('store'), 'seg.db'), maxMB: 10 });
    const rows = () => s.db.prepare('SELECT COUNT(*) FROM segments').pluck().get() as number;
    for (let i = 1; i <= 63; i++) s.append('telemetry', [body(i)]);
    expect(rows()).toBe(63); // each append its own row…
    for (let i = 64; i <= 128; i++) s.append('telemetry', [body(i)]);
    expect(rows()).toBe(3); // …merged every 64 appends: 50 + 50 + 28
    expect(s.nextText(0, 500)).toMatchObject({ first: 1, last: 128, count: 128 });
    // a batch takes whole rows where it can
    expect(s.nextText(0, 70)).toMatchObject({ first: 1, last: 50 });
    // acknowledging the middle of a row splits it
    expect(s.ack(10, 20)).toBe(11);
    expect(s.countRange(1, 50)).toBe(39);
    expect(s.nextBatch(5, 10).map((r) => r.seq)).toEqual([6, 7, 8, 9, 21, 22, 23, 24, 25, 26]);
    const t = s.nextText(9, 3)!;
    expect(t).toMatchObject({ first: 21, last: 23, count: 3 });
    expect(batchBody(t).toString()).toBe([21, 22, 23].map((k) => withSeq({ seq: k, kind: 'telemetry', body: body(k) })).join(','));
    // UTF-8 (an event's Chinese text) is cut at record boundaries, never inside a character
    const ev = s.append('event', [JSON.stringify({ ts: 'x', type: 'e', text: '气温 3.5 ℃ 低于 4 ℃' }), JSON.stringify({ ts: 'y', type: 'f', text: '停止洒水' })]).seqs;
    expect(s.ack(ev[0]!, ev[0]!)).toBe(1);
    expect([...s.iterate()].at(-1)).toEqual({ seq: ev[1], kind: 'event', body: JSON.stringify({ ts: 'y', type: 'f', text: '停止洒水' }) });
    expect(batchBody(s.nextText(ev[0]!, 10)!).toString()).toBe(`{"seq":${ev[1]},"ts":"y","type":"f","text":"停止洒水"}`);
    s.close();
  });

  it('one ack over several rows cuts the edge rows and deletes the whole rows between; queued acks are joined first', () => {
    const s = new Store({ path: path.join(tempDir('store'), 'span.db'), maxMB: 10 });
    const rows = () => s.db.prepare('SELECT first, last FROM segments ORDER BY first').raw(true).all();
    s.append('telemetry', Array.from({ length: 200 }, (_, i) => body(i + 1))); // rows 1–50, 51–100, 101–150, 151–200
    s.append('event', [JSON.stringify({ ts: 'e', type: 'x' })]); // 201, another kind
    expect(s.ack(30, 170)).toBe(141);
    expect(rows()).toEqual([
      [1, 29],
      [171, 200],
      [201, 201],
    ]);
    expect([...s.iterate()].map((r) => r.seq)).toEqual([...Array.from({ length: 29 }, (_, i) => i + 1), ...Array.from({ length: 31 }, (_, i) => i + 171)]);
    expect(joinRanges([{ from: 11, to: 20 }, { from: 1, to: 10 }, { from: 30, to: 40 }, { from: 35, to: 50 }, { from: 51, to: 51 }])).toEqual([
      [1, 20],
      [30, 51],
    ]);
    s.close();
  });

  it('the live batch read from the rows held in memory is byte for byte the batch read from the file, through appends, acks, cuts, compactions and a failed append', () => {
    const s = new Store({ path: path.join(tempDir('store'), 'tail.db'), maxMB: 10 });
    const table = (s as unknown as { table: SegmentTable }).table;
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const same = (after: number, max: number) => {
      const mem = table.batch(after, max);
      const file = table.batch(after, max, true);
      expect(mem && { ...mem, parts: undefined, body: batchBody(mem).toString() }, `after ${after} max ${max}`).toEqual(file && { ...file, parts: undefined, body: batchBody(file).toString() });
      return file;
    };
    let k = 0;
    // 64 appends of one record each: merged into rows of 50 at the 64th (a batch of 60 takes one whole row)
    for (let i = 0; i < 64; i++) s.append('telemetry', [body(++k)]);
    expect(same(0, 60)).toMatchObject({ first: 1, last: 50 });
    let cursor = 0;
    let fromTail = 0;
    for (let step = 0; step < 600; step++) {
      const op = rnd(10);
      if (op < 5) {
        const n = 1 + rnd(op === 0 ? 120 : 8);
        if (rnd(5) === 0) s.append('event', [JSON.stringify({ ts: 'x', type: 'e', text: '停止洒水'.repeat(rnd(3)) })]);
        else s.append('telemetry', Array.from({ length: n }, () => body(++k)));
      } else if (op < 7) {
        const b = same(cursor, 1 + rnd(300));
        if (b) cursor = b.last;
      } else if (op < 9) {
        const last = s.stats().lastSeq;
        const from = 1 + rnd(Math.max(1, last));
        s.ack(from, Math.min(last, from + rnd(60)));
      } else cursor = rnd(cursor + 1); // republish: the cursor goes back
      const before = fromTail;
      if (table.batch(cursor, 50) !== undefined && (table as unknown as { tailAfter(a: number): unknown }).tailAfter(cursor)) fromTail = before + 1;
      same(cursor, 1 + rnd(200));
    }
    expect(fromTail).toBeGreaterThan(50); // the memory path was taken, not only the file's
    // an append whose transaction fails after its first row keeps nothing in memory that the file does not hold
    const at = s.stats().lastSeq;
    s.db.exec(`CREATE TRIGGER full BEFORE INSERT ON segments WHEN NEW.first > ${at + 50} BEGIN SELECT RAISE(ABORT, 'disk full'); END`);
    expect(() => s.append('telemetry', Array.from({ length: 120 }, () => body(++k)))).toThrow(/disk full/);
    expect(same(at, 100)).toBeUndefined();
    s.db.exec('DROP TRIGGER full');
    s.append('telemetry', [body(++k)]);
    expect(same(at, 100)).toMatchObject({ count: 1 });
    s.close();
  });

  it('durability full sets synchronous FULL', () => {
    const s = new Store({ path: path.join(tempDir('store'), 'b.db'), maxMB: 1, durability: 'full' });
    expect(s.db.pragma('synchronous', { simple: true })).toBe(2);
    s.close();
    const n = new Store({ path: path.join(tempDir('store'), 'c.db'), maxMB: 1 });
    expect(n.db.pragma('synchronous', { simple: true })).toBe(1);
    n.close();
  });
});

describe('dustgate buffer export', () => {
  it('writes every buffered record oldest first, as jsonl or csv', async () => {
    const { runCommand } = await import('../helpers/system.js');
    const { ROOT } = await import('../helpers/gateway-rig.js');
    const { writeFileSync, readFileSync } = await import('node:fs');
    const dir = tempDir('export');
    const db = path.join(dir, 'buffer.db');
    const s = new Store({ path: db, maxMB: 10 });
    s.append('telemetry', [body(1), body(2)]);
    s.append('event', [JSON.stringify({ ts: '2026-01-01T00:00:00.000Z', type: 'dust_alarm', note: 'a, "quoted" text' })]);
    s.close();
    const cfg = path.join(dir, 'site.yaml');
    writeFileSync(cfg, `gateway: { id: export-test }\nstorage: { path: ${db} }\nmqtt: { password: s3cret }\n`);
    const cli = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT });
    const j = await cli(['buffer', 'export', '--config', cfg]);
    expect(j.code).toBe(0);
    const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => [r.seq, r.kind])).toEqual([[1, 'telemetry'], [2, 'telemetry'], [3, 'event']]);
    expect(rows[0]).toMatchObject({ device: 'head', values: { pm10: 1 } });
    const out = path.join(dir, 'out.csv');
    const c = await cli(['buffer', 'export', '--config', cfg, '--format', 'csv', '--out', out]);
    expect(c.code).toBe(0);
    const csv = readFileSync(out, 'utf8').trim().split('\n');
    expect(csv[0]).toBe('seq,kind,ts,device,type,body');
    expect(csv).toHaveLength(4);
    expect(csv[3]).toMatch(/^3,event,2026-01-01T00:00:00.000Z,,dust_alarm,"\{""ts""/);
    expect(readFileSync(out, 'utf8')).not.toContain('s3cret');
    const bad = await cli(['buffer', 'export', '--config', cfg, '--format', 'xml']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--format: expected jsonl or csv/);
  });
});

describe('config versions', () => {
  it('versions only grow and the last 20 are kept', () => {
    const s = new Store({ path: path.join(tempDir('versions'), 'b.db'), maxMB: 1 });
    for (let i = 0; i < 25; i++) s.versions.add({ source: i ? 'remote' : 'file', baseHash: 'h', config: `{"i":${i}}`, requestId: i ? `r${i}` : null });
    const h = s.versions.history(100);
    expect(h).toHaveLength(20);
    expect(h[0]).toMatchObject({ version: 25, source: 'remote', requestId: 'r24', config: '{"i":24}' });
    expect(h.at(-1)!.version).toBe(6);
    expect(s.replay.remember('x', 1000, 500)).toBe(true);
    expect(s.replay.remember('x', 1200, 500)).toBe(false);
    expect(s.replay.remember('x', 2000, 500)).toBe(true); // forgotten after keepMs
    s.close();
  });
});
