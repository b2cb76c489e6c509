/** Minute, hour and day aggregates with their validity rules, on local (Beijing) time. */
import { describe, expect, it } from 'vitest';
import { Aggregator, periodBounds, type Aggregate } from '../../gateway/aggregates.js';
import type { Reading } from '../../gateway/reading.js';

const TZ = 'Asia/Shanghai';
const cst = (iso: string) => Date.parse(`${iso}+08:00`);
const ok = (ts: number, pm10: number): Reading => ({ device: 'head', ts, values: { pm10 }, flags: { pm10: 'N' } });
const lost = (ts: number): Reading => ({ device: 'head', ts, values: {}, flags: { pm10: 'B' } });

function feed(a: Aggregator, readings: Reading[], until: number): Aggregate[] {
  const out: Aggregate[] = [];
  for (const r of readings) out.push(...a.add(r));
  out.push(...a.tick(until));
  return out;
}

describe('aggregates', () => {
  it('a minute: mean, min, max, count of its usable samples', () => {
    const t0 = cst('2026-06-01T10:00:00');
    const a = new Aggregator(TZ, ['pm10']);
    const out = feed(a, [ok(t0, 80), ok(t0 + 20_000, 100), lost(t0 + 30_000), ok(t0 + 40_000, 90)], t0 + 63_000);
    const m = out.filter((x) => x.period === 'minute');
    expect(m).toEqual([{ period: 'minute', start: t0, device: 'head', metric: 'pm10', mean: 90, min: 80, max: 100, count: 3, flag: 'N', valid: true }]);
  });

  it.each([
    [44, false, 'B'],
    [45, true, 'N'],
  ] as const)('an hour with %d valid minutes is valid: %s (flag %s)', (validMinutes, valid, flag) => {
    const h0 = cst('2026-06-01T10:00:00');
    const a = new Aggregator(TZ, ['pm10']);
    const rs: Reading[] = [];
    for (let m = 0; m < 60; m++) rs.push(m < validMinutes ? ok(h0 + m * 60_000 + 5000, 100 + m) : lost(h0 + m * 60_000 + 5000));
    const hour = feed(a, rs, h0 + 3600_000 + 3000).find((x) => x.period === 'hour')!;
    expect(hour).toMatchObject({ start: h0, count: validMinutes, valid, flag });
    expect(hour.min).toBe(100);
    expect(hour.max).toBe(100 + validMinutes - 1);
    expect(hour.mean).toBeCloseTo(100 + (validMinutes - 1) / 2);
  });

  it.each([
    [19, false],
    [20, true],
  ] as const)('a day with %d valid hours is valid: %s', (validHours, valid) => {
    const d0 = cst('2026-06-01T00:00:00');
    const a = new Aggregator(TZ, ['pm10']);
    const out: Aggregate[] = [];
    for (let h = 0; h < 24; h++)
      for (let m = 0; m < 60; m++) {
        const ts = d0 + h * 3600_000 + m * 60_000 + 1000;
        out.push(...a.add(h < validHours || m < 30 ? ok(ts, 50) : lost(ts))); // an invalid hour still has 30 good minutes
      }
    out.push(...a.tick(d0 + 86_400_000 + 3000));
    const hours = out.filter((x) => x.period === 'hour');
    expect(hours).toHaveLength(24);
    expect(hours.filter((x) => x.valid)).toHaveLength(validHours);
    const day = out.find((x) => x.period === 'day')!;
    expect(day).toMatchObject({ start: d0, count: validHours, valid, flag: valid ? 'N' : 'B', mean: 50 });
  });

  it('hours and days are local: a Beijing day starts at 16:00 UTC', () => {
    const t = Date.parse('2026-06-01T17:30:00Z');
    expect(new Date(periodBounds('day', t, TZ).start).toISOString()).toBe('2026-06-01T16:00:00.000Z');
    expect(new Date(periodBounds('hour', t, TZ).start).toISOString()).toBe('2026-06-01T17:00:00.000Z');
    expect(new Date(periodBounds('hour', t, 'Asia/Kolkata').start).toISOString()).toBe('2026-06-01T17:30:00.000Z');
  });

  it('a sample that comes after its minute was closed is dropped: no period is made twice, in any order', () => {
    const t0 = cst('2026-06-01T10:59:00');
    const a = new Aggregator(TZ, ['pm10']);
    const out: Aggregate[] = [];
    out.push(...a.add(ok(t0 + 10_000, 80)));
    // the clock closes 10:59 (and with it the hour) two seconds after its end; a sample of 10:59 comes later still
    out.push(...a.tick(t0 + 62_000));
    out.push(...a.add(ok(t0 + 59_900, 500)));
    out.push(...a.add(ok(t0 + 61_000, 90)), ...a.add(ok(t0 + 59_950, 500)));
    out.push(...a.tick(t0 + 125_000));
    const starts = out.map((x) => `${x.period} ${new Date(x.start).toISOString()}`);
    expect(new Set(starts).size, starts.join(', ')).toBe(starts.length);
    expect(out.filter((x) => x.period === 'minute').map((x) => [x.start, x.mean])).toEqual([
      [t0, 80],
      [t0 + 60_000, 90],
    ]);
    // 10:00–11:00 closed once, with its one minute (the late samples not in it); 11:00 is still open
    expect(out.filter((x) => x.period === 'hour').map((x) => [x.start, x.count, x.max])).toEqual([[cst('2026-06-01T10:00:00'), 1, 80]]);
  });

  it('mostly device faults make an invalid minute flagged D', () => {
    const t0 = cst('2026-06-01T10:00:00');
    const a = new Aggregator(TZ, ['pm10']);
    const d = (ts: number): Reading => ({ device: 'head', ts, values: { pm10: -1 }, flags: { pm10: 'D' } });
    const m = feed(a, [d(t0), d(t0 + 10_000)], t0 + 63_000).find((x) => x.period === 'minute')!;
    expect(m).toMatchObject({ valid: false, flag: 'D', count: 0, mean: null });
  });
});

describe('aggregates in the gateway', () => {
  it('closed minutes and hours are stored apart and published on P/aggregates with AQI for the hour', async () => {
    const { startInProcess } = await import('../helpers/gateway-rig.js');
    const { waitFor } = await import('../helpers/system.js');
    // 60× time: a scenario hour in a minute; start just before a local hour so it closes soon
    const rig = await startInProcess('dust-event', { factor: 120, startMs: cst('2026-06-01T09:58:00'), pollMs: 100 });
    try {
      rig.sim.setValues('head', { pm10: 120, pm25: 60 });
      await waitFor(() => rig.sub.on('aggregates').some((m) => m.payload.period === 'hour'), 60_000, 200);
      const minute = rig.sub.on('aggregates').find((m) => m.payload.period === 'minute' && m.payload.device === 'head')!.payload as { metrics: Record<string, { mean: number; count: number; flag: string }> };
      expect(minute.metrics.pm10!.count).toBeGreaterThan(5);
      const hour = rig.sub.on('aggregates').find((m) => m.payload.period === 'hour' && m.payload.device === 'head')!.payload as {
        start: string;
        metrics: Record<string, { valid: boolean; flag: string; count: number }>;
        aqi: { aqi: number } | null;
      };
      // the first hour was only partly seen (it began at 09:58): fewer than 45 minutes, so invalid, no AQI
      expect(hour.start).toBe('2026-06-01T01:00:00.000Z');
      expect(hour.metrics.pm10).toMatchObject({ valid: false, flag: 'B' });
      expect(hour.aqi).toBeNull();
      const stored = rig.gw.store.aggs.range('minute', '2026-06-01T00:00:00.000Z', '2026-06-02T00:00:00.000Z', 'head');
      expect(stored.filter((r) => r.metric === 'pm10').length).toBeGreaterThan(1);
    } finally {
      await rig.stop();
    }
  });
});

describe('annual report', () => {
  it('the running mean of valid daily means since 1 January against the city target of tables 1–3', async () => {
    const path = await import('node:path');
    const { resolveConfig } = await import('../../gateway/config/load.js');
    const { Gateway } = await import('../../gateway/gateway.js');
    const { tempDir } = await import('../helpers/gateway-rig.js');
    const { pino } = await import('pino');
    const loaded = resolveConfig({ gateway: { id: 'annual-test', site: { city: 'xinyang' } }, storage: { path: path.join(tempDir('annual'), 'b.db') }, mqtt: { enabled: false } });
    const gw = new Gateway({ loaded, logger: pino({ level: 'silent' }) });
    try {
      const day = (iso: string, metric: string, mean: number, count = 24, flag = 'N') => ({ period: 'day', start: new Date(cst(`${iso}T00:00:00`)).toISOString(), device: 'head', metric, mean, min: mean, max: mean, count, flag });
      gw.store.aggs.save([
        day('2025-12-31', 'pm10', 500), // last year: not counted
        day('2026-01-01', 'pm10', 80),
        day('2026-01-02', 'pm10', 100),
        day('2026-01-03', 'pm10', 300, 12, 'B'), // invalid day: not counted
        day('2026-01-02', 'pm25', 50),
      ]);
      const rep = gw.annualReport('head', cst('2026-01-03T00:00:00')) as Record<string, unknown>;
      // 信阳市 (table 2): PM10 84, PM2.5 58
      expect(rep).toMatchObject({ city: 'xinyang', pm10: { mean: 90, days: 2, target: 84, ratio: 1.071 }, pm25: { mean: 50, days: 1, target: 58, ratio: 0.862 } });
      expect(rep.since).toBe('2025-12-31T16:00:00.000Z');
    } finally {
      await gw.stop();
    }
  });
  it('what a reading lists in which order does not change any aggregate: shapes that change from reading to reading, gaps, late samples, ticks', () => {
    const t0 = cst('2026-06-01T10:00:00');
    const metrics = ['pm10', 'pm25', 'noise', 'windSpeed'];
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const stream: Reading[] = [];
    for (let k = 0; k < 4000; k++) {
      const device = `d${rnd(3)}`;
      const ts = t0 + k * 1500 - (rnd(20) === 0 ? 70_000 : 0); // now and then a sample from a minute before
      const kind = rnd(6);
      const values: Record<string, number> = {};
      const flags: Record<string, Reading['flags'][string]> = {};
      for (const m of metrics) {
        if (kind === 0) flags[m] = 'B'; // a failed poll
        else if (kind === 1 && m === 'pm25') continue; // a metric missing
        else {
          values[m] = rnd(1000) / 10;
          flags[m] = rnd(15) === 0 ? 'T' : 'N';
        }
      }
      if (kind === 2) flags.rainfall = 'N'; // a metric the aggregator does not keep, first or last
      stream.push({ device, ts, values, flags });
    }
    const run = (order: (keys: string[]) => string[]) => {
      const a = new Aggregator(TZ, metrics);
      const out: Aggregate[] = [];
      stream.forEach((r, k) => {
        const flags = Object.fromEntries(order(Object.keys(r.flags)).map((m) => [m, r.flags[m]!]));
        out.push(...a.add({ ...r, flags }));
        if (k % 97 === 0) out.push(...a.tick(r.ts)); // a tick now and then closes what no sample closed
      });
      out.push(...a.tick(t0 + 4000 * 1500 + 3600_000 * 2));
      const key = (x: Aggregate) => `${x.period}|${x.start}|${x.device}|${x.metric}`;
      return out.sort((x, y) => (key(x) < key(y) ? -1 : 1));
    };
    const sorted = run((keys) => keys.sort());
    expect(sorted.filter((x) => x.period === 'minute').length).toBeGreaterThan(300);
    expect(sorted.some((x) => x.period === 'hour')).toBe(true);
    expect(run((keys) => keys.sort().reverse())).toEqual(sorted);
    let turn = 0;
    expect(run((keys) => (turn++ % 3 === 0 ? keys.reverse() : keys))).toEqual(sorted);
  });
});
