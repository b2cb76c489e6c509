/** Report strategies at their edges: what of each poll goes to the uplink (the rest still reaches rules and aggregates). */
import { describe, expect, it } from 'vitest';
import type { Flag, Reading } from '../../gateway/reading.js';
import { ReportFilter, type DeviceReport } from '../../gateway/report-filter.js';

const T0 = Date.parse('2026-12-02T00:00:00Z');
const r = (device: string, s: number, values: Record<string, number>, flags: Record<string, Flag> = Object.fromEntries(Object.keys(values).map((k) => [k, 'N' as Flag]))): Reading => ({ device, ts: T0 + s * 1000, values, flags });
const filter = (d: Record<string, DeviceReport | undefined>) => new ReportFilter(new Map(Object.entries(d)));
const sent = (f: ReportFilter, readings: Reading[]) => readings.map((x) => f.pass(x)?.values ?? null);

describe('report strategies', () => {
  it('every (the default for sensors): each poll', () => {
    const f = filter({ head: undefined });
    expect(sent(f, [r('head', 0, { pm10: 80 }), r('head', 1, { pm10: 80 }), r('head', 2, { pm10: 80 })])).toEqual([{ pm10: 80 }, { pm10: 80 }, { pm10: 80 }]);
  });

  it('onChange with an absolute deadband: a move of exactly the deadband is sent, less is not, measured from the value last sent', () => {
    const f = filter({ th: { strategy: 'onChange', deadband: 0.5 } });
    expect(sent(f, [r('th', 0, { temperature: 20 }), r('th', 1, { temperature: 20.4 }), r('th', 2, { temperature: 20.49 }), r('th', 3, { temperature: 20.5 }), r('th', 4, { temperature: 20.1 }), r('th', 5, { temperature: 20.0 })])).toEqual([
      { temperature: 20 },
      null,
      null,
      { temperature: 20.5 },
      null,
      { temperature: 20 },
    ]);
  });

  it('onChange with a relative deadband (percent of the value last sent); a flag change is always sent', () => {
    const f = filter({ dust: { strategy: 'onChange', deadbandPct: 10 } });
    const out = sent(f, [r('dust', 0, { pm10: 100 }), r('dust', 1, { pm10: 109 }), r('dust', 2, { pm10: 110 }), r('dust', 3, { pm10: 111 }, { pm10: 'T' }), r('dust', 4, { pm10: 112 }, { pm10: 'T' })]);
    expect(out).toEqual([{ pm10: 100 }, null, { pm10: 110 }, { pm10: 111 }, null]);
  });

  it('channels default to on change with a 300 s heartbeat: unchanged inputs go out again at exactly 300 s', () => {
    const f = filter({ dio: undefined });
    const ch = (s: number, v: number) => r('dio', s, { ch1: v, ch2: 0 });
    expect(sent(f, [ch(0, 0), ch(0.2, 0), ch(0.4, 1), ch(0.6, 1), ch(299.9, 1)])).toEqual([{ ch1: 0, ch2: 0 }, null, { ch1: 1 }, null, null]);
    // ch2 was last sent at 0 s, ch1 at 0.4 s
    expect(f.pass(ch(300, 1))?.values).toEqual({ ch2: 0 });
    expect(f.pass(ch(300.4, 1))?.values).toEqual({ ch1: 1 });
  });

  it('a heartbeat on an analog onChange metric; per-metric rules override the device', () => {
    const f = filter({ head: { strategy: 'onChange', deadband: 1, heartbeatS: 60, metrics: { pm10: { strategy: 'every' } } } });
    const out = sent(f, [r('head', 0, { temperature: 5, pm10: 80 }), r('head', 30, { temperature: 5.5, pm10: 80 }), r('head', 59, { temperature: 5.5, pm10: 81 }), r('head', 60, { temperature: 5.5, pm10: 81 })]);
    expect(out).toEqual([{ temperature: 5, pm10: 80 }, { pm10: 80 }, { pm10: 81 }, { temperature: 5.5, pm10: 81 }]);
  });

  it('interval: one value per window (aligned to the interval), the mean, min, max or latest of the polls in it', () => {
    for (const [aggregate, want] of [['mean', 2], ['min', 1], ['max', 3], ['latest', 3]] as const) {
      const f = filter({ noise: { strategy: 'interval', intervalS: 60, aggregate } });
      const out = sent(f, [r('noise', 0, { noise: 1 }), r('noise', 20, { noise: 2 }), r('noise', 59.9, { noise: 3 }), r('noise', 60, { noise: 10 }), r('noise', 119, { noise: 10 }), r('noise', 120, { noise: 0 })]);
      expect(out, aggregate).toEqual([null, null, null, { noise: want }, null, { noise: 10 }]);
    }
  });

  it('a failed poll (flags B, no values) is a change for onChange and goes out with every', () => {
    const f = filter({ dio: undefined, head: undefined });
    f.pass(r('dio', 0, { ch1: 0 }));
    expect(f.pass({ device: 'dio', ts: T0 + 1000, values: {}, flags: { ch1: 'B' } })?.flags).toEqual({ ch1: 'B' });
    expect(f.pass({ device: 'dio', ts: T0 + 2000, values: {}, flags: { ch1: 'B' } })).toBeUndefined();
    expect(f.pass(r('dio', 3, { ch1: 0 }))?.values).toEqual({ ch1: 0 });
    expect(f.pass({ device: 'head', ts: T0 + 4000, values: {}, flags: { pm10: 'B' } })?.flags).toEqual({ pm10: 'B' });
  });

  it('a clock stepped back starts the device over (no window or heartbeat waits for a time that already passed)', () => {
    const f = filter({ dio: undefined });
    f.pass(r('dio', 1000, { ch1: 0 }));
    expect(f.pass(r('dio', 10, { ch1: 0 }))?.values).toEqual({ ch1: 0 });
  });
});
