import { describe, expect, it } from 'vitest';
import { HourSeries, LatestValues } from '../../gateway/state-view.js';

/** The page's last hour as it was kept before (an array of pairs): the oracle. */
function reference(points: [number, number][], spanMs: number): [number, number][] {
  const h: [number, number][] = [];
  for (const [t, v] of points) {
    h.push([t, v]);
    while (h.length && h[0]![0] < t - spanMs) h.shift();
  }
  return h;
}

/** A small deterministic generator (no dependency on Math.random). */
function lcg(seed: number) {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('the page\'s last hour (typed ring)', () => {
  it('holds exactly what an array of pairs trimmed to the hour held, through growth, wrap-around, gaps and a clock stepping back', () => {
    for (const seed of [1, 2, 3]) {
      const rnd = lcg(seed);
      const points: [number, number][] = [];
      let t = 1_764_000_000_000;
      for (let i = 0; i < 60_000; i++) {
        const r = rnd();
        // a 1 s poll for two hours, then a 100 ms poll (the ring grows while it is wrapped), and so on;
        // now and then the same time again, an outage of more than an hour, or a clock step back of 10 min
        const step = Math.floor(i / 8000) % 2 === 0 ? 1000 : 100;
        t += r < 0.9990 ? step : r < 0.9993 ? 3_700_000 : r < 0.9997 ? -600_000 : 0;
        points.push([t, Math.round(rnd() * 1e6) / 1000]);
      }
      const s = new HourSeries();
      const h: [number, number][] = [];
      let checked = 0;
      points.forEach(([pt, v], i) => {
        s.push(pt, v);
        h.push([pt, v]);
        while (h.length && h[0]![0] < pt - 3600_000) h.shift();
        // compared along the way (right after the ring grows, too), not only at the end
        if (i % 499 === 0 || s.length === 4097 || s.length === 8193) {
          expect(s.length).toBe(h.length);
          expect(s.points()).toEqual(h);
          checked++;
        }
      });
      expect(checked).toBeGreaterThan(100);
      expect(s.points()).toEqual(reference(points, 3600_000));
    }
  });
  it('is bounded by the hour: a day at 1 Hz keeps 3,601 points', () => {
    const s = new HourSeries();
    for (let i = 0; i < 86_400; i++) s.push(i * 1000, i);
    expect(s.length).toBe(3601);
    expect(s.points()[0]).toEqual([(86_399 - 3600) * 1000, 86_399 - 3600]);
    expect(s.points().at(-1)).toEqual([86_399_000, 86_399]);
  });
  it('LatestValues keeps the last hour of source metrics only, as pairs', () => {
    const lv = new LatestValues();
    const sources = { pm10: 'head', temperature: 'head' };
    for (let i = 0; i < 5; i++) lv.observe({ device: 'head', ts: 1000 * i, values: { pm10: 80 + i, temperature: 5, noise: 50 }, flags: { pm10: 'N', temperature: 'N', noise: 'N' } }, sources);
    lv.observe({ device: 'other', ts: 9000, values: { pm10: 999 }, flags: { pm10: 'N' } }, sources);
    const h = lv.lastHour();
    expect(Object.keys(h).sort()).toEqual(['pm10', 'temperature']);
    expect(h.pm10).toEqual([0, 1, 2, 3, 4].map((i) => [1000 * i, 80 + i]));
    expect(lv.bySource.pm10).toEqual({ v: 84, flag: 'N' });
  });
});
