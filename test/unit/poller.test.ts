/**
 * The poller's schedule (gateway/poller.ts), on fake time: the devices of a line are read one after
 * another by one loop, at a fixed rate (due pollMs after they were due, not after a late start), the
 * devices due together stay together (one wake-up and one 'idle' a cycle), lines do not wait for one
 * another, a line that is behind reads the longest-waiting device first, and stop waits for the read
 * on the wire. The far end (a device's read) is faked; the poller is the real one.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Poller } from '../../gateway/poller.js';
import type { GatewayDevice } from '../../drivers/device.js';

/** A device whose read takes `readMs` of (fake) time; it records when each read started and ended. */
class FakeDevice extends EventEmitter {
  readonly unit = 1;
  readonly offlineAfter = 3;
  readonly counters = {} as GatewayDevice['counters'];
  readonly definition = {} as GatewayDevice['definition'];
  status: GatewayDevice['status'] = 'online';
  readonly consecutiveMisses = 0;
  starts: number[] = [];
  ends: number[] = [];
  fail = false;
  constructor(
    readonly id: string,
    readonly bus: object,
    readonly pollMs: number,
    public readMs: number,
  ) {
    super();
  }
  read() {
    this.starts.push(Date.now());
    return new Promise<Record<string, number>>((resolve, reject) =>
      setTimeout(() => {
        this.ends.push(Date.now());
        if (this.fail) reject(new Error('timeout'));
        else resolve({ v: 1 });
      }, this.readMs),
    );
  }
  nextDelayMs() {
    return this.pollMs;
  }
  writeChannel() {
    return Promise.resolve(true);
  }
  readChannels() {
    return Promise.resolve([]);
  }
}

const poll = (devices: FakeDevice[]) => new Poller(devices as unknown as GatewayDevice[], { mono: () => Date.now(), now: () => Date.now() });
/** stop, letting (fake) time run for the read on the wire to end */
async function stop(p: Poller): Promise<void> {
  const stopping = p.stop();
  await vi.advanceTimersByTimeAsync(1000);
  await stopping;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('poller', () => {
  it('reads the devices of a line one after another, at a fixed rate, one idle a cycle', async () => {
    const line = {};
    const devs = [0, 1, 2, 3, 4].map((i) => new FakeDevice(`d${i}`, line, 100, 3));
    const p = poll(devs);
    let idles = 0;
    p.on('idle', () => idles++);
    const t0 = Date.now();
    expect(p.firstCycleDone).toBe(false);
    p.start();
    await vi.advanceTimersByTimeAsync(10); // d0–d2 read, d3 on the wire
    expect(p.firstCycleDone).toBe(false);
    await vi.advanceTimersByTimeAsync(1990);
    expect(p.firstCycleDone).toBe(true);
    await stop(p);
    // never two reads of one line at once
    const spans = devs.flatMap((d) => d.starts.map((s, i) => [s, d.ends[i]!] as const)).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    // a cycle every 100 ms from the start; device i is read 3·i ms into it, every cycle (no drift)
    devs.forEach((d, i) => {
      expect(d.starts.length).toBeGreaterThanOrEqual(20);
      d.starts.forEach((s, k) => expect(s - t0, `${d.id} read ${k}`).toBe(k * 100 + 3 * i));
    });
    // the line wakes once a cycle (a device whose read ends before the next is due does not make its own cycle)
    expect(idles).toBeGreaterThanOrEqual(20);
    expect(idles).toBeLessThanOrEqual(21);
  });

  it('a line that is behind reads the longest-waiting device first and does not catch up in a burst', async () => {
    const line = {};
    const slow = new FakeDevice('slow', line, 100, 250);
    const fast = new FakeDevice('fast', line, 100, 5);
    const p = poll([slow, fast]);
    const t0 = Date.now();
    p.start();
    await vi.advanceTimersByTimeAsync(1000);
    await stop(p);
    // they take turns: slow (0–250), fast (250–255), slow (255–505), fast, …
    expect(slow.starts.map((s) => s - t0)).toEqual([0, 255, 510, 765]);
    expect(fast.starts.map((s) => s - t0)).toEqual([250, 505, 760]);
    // lag: the fast one waited up to 250 ms past its due time
    expect(fast.starts.length).toBeGreaterThanOrEqual(3);
  });

  it('lines do not wait for one another', async () => {
    const a = new FakeDevice('a', {}, 100, 90);
    const b = new FakeDevice('b', {}, 100, 1);
    const p = poll([a, b]);
    const t0 = Date.now();
    p.start();
    await vi.advanceTimersByTimeAsync(500);
    await stop(p);
    expect(b.starts.map((s) => s - t0)).toEqual([0, 100, 200, 300, 400, 500]);
    expect(a.starts.map((s) => s - t0)).toEqual([0, 100, 200, 300, 400, 500]);
  });

  it('reports lag while a line is behind, reads in flight, and waits for the read on the wire at stop', async () => {
    const line = {};
    const d = new FakeDevice('d', line, 100, 30);
    const e = new FakeDevice('e', line, 100, 30);
    const p = poll([d, e]);
    p.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(p.readsInFlight).toBe(1);
    // e waits behind d's read on its line: that is the line's turn, within the allowance
    expect(p.lagMs(1000)).toBe(0);
    expect(p.lagMs(0)).toBe(10);
    d.readMs = 60_000; // a read that takes a minute (the line's timeout would end it sooner)
    await vi.advanceTimersByTimeAsync(200);
    expect(p.lagMs(1000)).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(p.lagMs(1000)).toBeGreaterThan(4000);
    let stopped = false;
    const stopping = p.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(1000);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    await stopping;
    expect(stopped).toBe(true);
    const reads = d.starts.length + e.starts.length;
    await vi.advanceTimersByTimeAsync(1000);
    expect(d.starts.length + e.starts.length).toBe(reads);
    // and it starts again
    d.readMs = 1;
    p.start();
    await vi.advanceTimersByTimeAsync(250);
    expect(d.starts.length + e.starts.length).toBeGreaterThan(reads + 4);
    await stop(p);
  });

  it('a failing device is polled on its own delay and the others keep their cadence', async () => {
    const line = {};
    const dead = new FakeDevice('dead', line, 100, 50);
    dead.fail = true;
    dead.nextDelayMs = () => 400;
    const ok = new FakeDevice('ok', line, 100, 2);
    const p = poll([dead, ok]);
    const errors: string[] = [];
    p.on('read-error', (id: string) => errors.push(id));
    const t0 = Date.now();
    p.start();
    await vi.advanceTimersByTimeAsync(1000);
    await stop(p);
    expect(dead.starts.map((s) => s - t0)).toEqual([0, 400, 800]);
    expect(errors).toEqual(['dead', 'dead', 'dead']);
    // ok waits for the dead one's 50 ms in the cycles it is read, and keeps its 100 ms grid
    expect(ok.starts.map((s) => s - t0)).toEqual([50, 100, 200, 300, 450, 500, 600, 700, 850, 900, 1000]);
  });
});

describe('poller and its listeners', () => {
  it('a listener that throws (and one told of it that throws too) does not end the line: its devices are read on', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const d = new FakeDevice('d', {}, 100, 1);
    const p = poll([d]);
    const told: string[] = [];
    p.on('reading', () => {
      throw new Error('reading listener');
    });
    p.on('idle', () => {
      throw new Error('idle listener');
    });
    p.on('listener-error', (what: string) => {
      told.push(what);
      throw new Error('listener-error listener');
    });
    p.start();
    await vi.advanceTimersByTimeAsync(1000);
    await stop(p);
    expect(d.starts.length).toBeGreaterThanOrEqual(10);
    expect(told.filter((w) => w === 'd').length).toBeGreaterThanOrEqual(10);
    expect(told).toContain('idle');
  });
});
