/**
 * A poll cycle's readings (gateway/record-batch.ts): their data path is held until the poller has no
 * read in flight (or HOLD_MS), then written in one group; events flush them first, so seqs keep the
 * order things happened in; `commitMs: 0` writes at once. A real store on a real file.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { HOLD_MS, RecordBatch, type BatchHost } from '../../gateway/record-batch.js';
import { Store } from '../../gateway/store.js';
import { StorageGuard } from '../../gateway/storage-guard.js';
import type { Reading } from '../../gateway/reading.js';
import { tempDir } from '../helpers/gateway-rig.js';

const opened: Store[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const s of opened.splice(0)) s.close();
});

/** The batch's host as the gateway is to it: a real store behind the guard, data-path errors logged. */
function host() {
  const store = new Store({ path: path.join(tempDir('batch'), 'b.db'), maxMB: 16 });
  opened.push(store);
  const logged: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => logged.push(JSON.parse(l).msg) });
  const storage = new StorageGuard(store, { now: Date.now, mono: () => performance.now(), logger });
  const h = Object.assign(new EventEmitter(), {
    storage,
    health: { overflow: () => undefined },
    counters: { readings: 0 },
    pumps: 0,
    pumpUplinks: () => void h.pumps++,
    dataPath(what: string, job: () => void) {
      try {
        job();
      } catch (e) {
        logged.push(`${what}: ${String(e)}`);
      }
    },
  });
  return { h: h as typeof h & BatchHost, store, logged };
}

const reading = (device: string, i: number): Reading => ({ device, ts: 1_780_000_000_000 + i, values: { pm10: i }, flags: { pm10: 'N' } });
const body = (r: Reading) => JSON.stringify({ ts: new Date(r.ts).toISOString(), device: r.device, values: r.values });
/** Every stored record in seq order (a batch is one kind: read them all, batch after batch). */
function records(store: Store) {
  const out = [];
  for (let b = store.nextBatch(0, 1000); b.length; b = store.nextBatch(b[b.length - 1]!.seq, 1000)) out.push(...b);
  return out;
}
const stored = (store: Store) => records(store).map((r) => [r.kind, JSON.parse(r.body)]);
const devicesOf = (store: Store) => stored(store).map(([k, b]) => (k === 'event' ? `event:${b.type}` : b.device));

describe('record batch: a poll cycle written together', () => {
  it('holds a cycle’s readings until the poller is idle, then writes them in one group in the order they came', () => {
    const { h, store } = host();
    const batch = new RecordBatch(h, 1000);
    const seen: string[] = [];
    for (const d of ['a', 'b', 'c']) batch.hold(() => (seen.push(d), batch.add('telemetry', body(reading(d, seen.length)), reading(d, 0))));
    expect(seen).toEqual([]);
    batch.cycleEnd();
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(store.depth).toBe(0); // in the group, not yet committed (commitMs)
    batch.flush();
    expect(devicesOf(store)).toEqual(['a', 'b', 'c']);
    expect(h.counters.readings).toBe(3);
    batch.cycleEnd(); // nothing held: nothing happens
    expect(store.depth).toBe(3);
  });

  it('lets go of held readings after HOLD_MS when the poller is never idle (a line that is always busy)', () => {
    vi.useFakeTimers();
    const { h, store } = host();
    const batch = new RecordBatch(h, 1000);
    batch.hold(() => batch.add('telemetry', body(reading('a', 1)), reading('a', 1)));
    vi.advanceTimersByTime(HOLD_MS - 1);
    batch.hold(() => batch.add('telemetry', body(reading('b', 2)), reading('b', 2)));
    expect(store.depth).toBe(0);
    vi.advanceTimersByTime(1); // the hold's bound, counted from the first held reading
    vi.advanceTimersByTime(1000); // and the group's commit
    expect(devicesOf(store)).toEqual(['a', 'b']);
  });

  it('an event flushes the held readings first: readings before it keep the lower seqs', () => {
    const { h, store } = host();
    const batch = new RecordBatch(h, 1000);
    batch.hold(() => batch.add('telemetry', body(reading('a', 1)), reading('a', 1)));
    batch.hold(() => batch.add('telemetry', body(reading('b', 2)), reading('b', 2)));
    // what the gateway's record() does for an event: flush, then append the event
    batch.flush();
    h.storage.appendEvents([JSON.stringify({ ts: new Date().toISOString(), type: 'dust_alarm' })]);
    batch.hold(() => batch.add('telemetry', body(reading('c', 3)), reading('c', 3)));
    batch.flush();
    expect(devicesOf(store)).toEqual(['a', 'b', 'event:dust_alarm', 'c']);
    const seqs = records(store).map((r) => r.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });

  it('runs the cycle-done hooks once after a cycle’s readings (inCycle while they run), not for an empty cycle', () => {
    const { h } = host();
    const batch = new RecordBatch(h, 1000);
    const log: string[] = [];
    batch.onCycleDone(() => log.push(`done inCycle=${batch.inCycle}`));
    batch.hold(() => log.push(`a inCycle=${batch.inCycle}`));
    batch.hold(() => log.push(`b inCycle=${batch.inCycle}`));
    batch.cycleEnd();
    batch.cycleEnd();
    expect(log).toEqual(['a inCycle=true', 'b inCycle=true', 'done inCycle=false']);
  });

  it('a change to commitMs 0 lets the held readings go first, so the order stays', () => {
    const { h, store } = host();
    const batch = new RecordBatch(h, 1000);
    batch.hold(() => batch.add('telemetry', body(reading('a', 1)), reading('a', 1)));
    batch.setCommitMs(0);
    batch.hold(() => batch.add('telemetry', body(reading('b', 2)), reading('b', 2)));
    batch.flush();
    expect(devicesOf(store)).toEqual(['a', 'b']);
  });

  it('writes each reading at once with commitMs 0 (nothing held)', () => {
    const { h, store } = host();
    const batch = new RecordBatch(h, 0);
    batch.hold(() => batch.add('telemetry', body(reading('a', 1)), reading('a', 1)));
    expect(devicesOf(store)).toEqual(['a']);
  });

  it('a reading whose data path throws is logged and does not keep the others of its cycle from being written', () => {
    const { h, store, logged } = host();
    const batch = new RecordBatch(h, 1000);
    batch.hold(() => batch.add('telemetry', body(reading('a', 1)), reading('a', 1)));
    batch.hold(() => {
      throw new Error('aggregates: no such metric');
    });
    batch.hold(() => batch.add('telemetry', body(reading('c', 3)), reading('c', 3)));
    batch.flush();
    expect(devicesOf(store)).toEqual(['a', 'c']);
    expect(logged).toContain('reading: Error: aggregates: no such metric');
  });
});
