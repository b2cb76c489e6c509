/** The rules of SPEC §6 at every boundary, on a fake clock (no timers, no I/O). */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../gateway/config/load.js';
import type { Rules } from '../../gateway/config/schema.js';
import {
  alarmStep,
  debounceStep,
  earthworkBanReason,
  effectiveRules,
  inBanPeriod,
  isNight,
  noiseLimits,
  sprinklingAllowed,
  sweepStep,
  initialSweep,
} from '../../gateway/rules/decisions.js';
import { RulesEngine, type EngineConfig } from '../../gateway/rules/engine.js';
import { MeanWindows } from '../../gateway/rules/windows.js';
import type { Reading } from '../../gateway/reading.js';

const TZ = 'Asia/Shanghai';
/** Local time in Asia/Shanghai (UTC+8, no DST) as epoch ms. */
const cst = (iso: string) => Date.parse(`${iso}+08:00`);

function loaded(rules: Record<string, unknown> = {}) {
  return resolveConfig({
    gateway: { id: 'test-site' },
    buses: [{ id: 'line1', type: 'tcp', host: '127.0.0.1', port: 1502 }],
    devices: [
      { id: 'head', bus: 'line1', unit: 1, driver: 'cwt-weather-station' },
      { id: 'relays', bus: 'line1', unit: 2, driver: 'waveshare-relay-8ch' },
      { id: 'dio', bus: 'line1', unit: 3, driver: 'waveshare-di-8ch' },
    ],
    outputs: {
      sprinkler: { device: 'relays', channel: 1, kind: 'road' },
      greenbelt: { device: 'relays', channel: 4, kind: 'greenbelt' },
      sweepStopSignal: { device: 'relays', channel: 2 },
      cameraTrigger: { device: 'relays', channel: 3, pulseMs: 500 },
    },
    inputs: {
      gateCamera: { device: 'dio', channel: 1, kind: 'video-trigger', debounceMs: 50 },
      earthwork: { device: 'dio', channel: 2, kind: 'earthwork-activity' },
    },
    rules,
  });
}
const RULES: Rules = loaded().config.rules;

function engineAt(now: number, rules: Record<string, unknown> = {}): RulesEngine {
  const c = loaded(rules).config;
  const cfg: EngineConfig = {
    rules: c.rules,
    outputs: c.outputs,
    inputs: c.inputs,
    sources: { temperature: 'head', windSpeed: 'head', pm10: 'head', pm25: 'head', noise: 'head' },
    timezone: TZ,
  };
  return new RulesEngine(cfg, now);
}
const head = (ts: number, values: Record<string, number>): Reading => ({
  device: 'head',
  ts,
  values,
  flags: Object.fromEntries(Object.keys(values).map((k) => [k, 'N'])),
});
const dio = (ts: number, ch1: number, ch2 = 0): Reading => ({ device: 'dio', ts, values: { ch1, ch2 }, flags: { ch1: 'N', ch2: 'N' } });

describe('frost interlock', () => {
  const cfg = RULES.sprinkling;
  const now = 1_000_000;
  it('road needs ≥ 4.0 °C: 3.9 blocks, 4.0 allows', () => {
    expect(sprinklingAllowed('road', { t: now, v: 3.9 }, now, cfg)).toMatchObject({ allowed: false, reason: 'temperature_below_min' });
    expect(sprinklingAllowed('road', { t: now, v: 4.0 }, now, cfg)).toMatchObject({ allowed: true });
    // decoded ×0.1 values carry rounding noise
    expect(sprinklingAllowed('road', { t: now, v: 40 * 0.1 }, now, cfg).allowed).toBe(true);
    expect(sprinklingAllowed('road', { t: now, v: 39 * 0.1 }, now, cfg).allowed).toBe(false);
  });
  it('greenbelt needs ≥ 5.0 °C: 4.9 blocks, 5.0 allows', () => {
    expect(sprinklingAllowed('greenbelt', { t: now, v: 4.9 }, now, cfg)).toMatchObject({ allowed: false, reason: 'temperature_below_min', limit: 5 });
    expect(sprinklingAllowed('greenbelt', { t: now, v: 5.0 }, now, cfg).allowed).toBe(true);
  });
  it('missing or older than tempMaxAgeS counts as unknown and blocks', () => {
    expect(sprinklingAllowed('road', undefined, now, cfg)).toMatchObject({ allowed: false, reason: 'temperature_unknown' });
    expect(sprinklingAllowed('road', { t: now - 300_000, v: 20 }, now, cfg).allowed).toBe(true);
    expect(sprinklingAllowed('road', { t: now - 300_001, v: 20 }, now, cfg)).toMatchObject({ allowed: false, reason: 'temperature_unknown' });
  });
});

describe('a config change under a running relay', () => {
  it('an output that becomes a sprinkler in a new config is under the frost interlock at once', () => {
    const c = loaded().config;
    const base = { rules: c.rules, inputs: c.inputs, sources: { temperature: 'head' }, timezone: TZ };
    const e = new RulesEngine({ ...base, outputs: { ...c.outputs, mist: { device: 'relays', channel: 5 } } }, 0);
    e.ingest(head(0, { temperature: 10 }));
    expect(e.request('mist', true, 1000)).toEqual({ ok: true });
    e.ingest(head(2000, { temperature: 2 }));
    expect(e.evaluate(2000).events.filter((x) => x.type === 'sprinkler_stopped')).toEqual([]); // not a sprinkler (yet)
    e.configure({ ...base, outputs: { ...c.outputs, mist: { device: 'relays', channel: 5, kind: 'road' } } }, 3000);
    const out = e.evaluate(3000);
    expect(out.events).toContainEqual(expect.objectContaining({ type: 'sprinkler_stopped', output: 'mist', reason: 'temperature_below_min' }));
    expect(out.commands).toContainEqual(expect.objectContaining({ output: 'mist', on: false }));
  });
});

describe('sweeping stop (Beaufort of the 2-minute mean)', () => {
  const cfg = RULES.sweeping;
  it('3.3 m/s (level 2) keeps sweeping, 3.4 m/s (level 3) stops it', () => {
    expect(sweepStep(initialSweep(), 3.3, 0, cfg).change).toBeUndefined();
    const s = sweepStep(initialSweep(), 3.4, 0, cfg);
    expect(s.change).toBe('stopped');
    expect(s.state.level).toBe(3);
    // 3.35 rounds to 3.4
    expect(sweepStep(initialSweep(), 3.35, 0, cfg).change).toBe('stopped');
    expect(sweepStep(initialSweep(), 3.34, 0, cfg).change).toBeUndefined();
  });
  it('resumes only after resumeAfterS below, and a gust resets the wait', () => {
    let s = sweepStep(initialSweep(), 4.0, 0, cfg).state;
    s = sweepStep(s, 3.0, 1000, cfg).state;
    expect(sweepStep(s, 3.0, 1000 + 599_999, cfg).change).toBeUndefined();
    s = sweepStep(s, 3.6, 300_000, cfg).state; // back above: wait starts again
    s = sweepStep(s, 3.0, 301_000, cfg).state;
    expect(sweepStep(s, 3.0, 301_000 + 599_999, cfg).change).toBeUndefined();
    const r = sweepStep(s, 3.0, 301_000 + 600_000, cfg);
    expect(r.change).toBe('allowed');
    expect(r.state.stopped).toBe(false);
  });
  it('the mean is over windAverageS (120 s), not the last sample', () => {
    const w = new MeanWindows();
    for (const s of [
      { t: 0, v: 10 },
      { t: 60_000, v: 3.0 },
      { t: 119_000, v: 3.0 },
    ])
      w.push('windSpeed', s);
    expect(w.mean('windSpeed', 120_000, 120)).toBeCloseTo(3.0);
    expect(w.mean('windSpeed', 119_999, 120)).toBeCloseTo(16 / 3);
    expect(w.mean('pm10', 0, 120)).toBeNull();
  });
  /** The reference: the mean of the samples in (now - windowS, now], added up one by one; null when there are none. */
  const meanOver = (samples: readonly { t: number; v: number }[], now: number, windowS: number): number | null => {
    const from = now - windowS * 1000;
    let sum = 0;
    let n = 0;
    for (const s of samples)
      if (s.t > from && s.t <= now) {
        sum += s.v;
        n++;
      }
    return n ? sum / n : null;
  };
  it('the windows (typed arrays, running sums) give the mean of a scan over the same samples, as they grow, age out, fall out of order or take a wild value', () => {
    // a seeded walk: readings every ~1 s with gaps, pruned to 300 s, means over 0.7–3600 s; against meanOver over a plain copy
    let seed = 7;
    const rnd = () => ((seed = (seed * 48271) % 0x7fffffff) / 0x7fffffff);
    for (const variant of ['in order', 'late sample', 'NaN', 'huge']) {
      const w = new MeanWindows();
      let copy: { t: number; v: number }[] = [];
      let t = 0;
      for (let k = 0; k < 3000; k++) {
        t += rnd() < 0.02 ? 400_000 : 500 + Math.floor(rnd() * 1000); // now and then a gap longer than the window: it empties
        let s = { t, v: Math.round(rnd() * 3000) / 10 };
        if (k === 1500 && variant === 'late sample') s = { t: t - 5_000, v: 1 };
        if (k === 1500 && variant === 'NaN') s = { t, v: Number.NaN };
        if (k === 1500 && variant === 'huge') s = { t, v: 1e300 };
        w.push('pm10', s);
        copy.push(s);
        const from = t - 300_000;
        w.prune(from);
        let i = 0;
        while (i < copy.length && copy[i]!.t <= from) i++;
        copy = copy.slice(i);
        expect(w.size('pm10')).toBe(copy.length);
        for (const win of [0.7, 1, 120, 300, 3600])
          for (const now of [t, t - 1, t + 250]) {
            const want = meanOver(copy, now, win);
            const got = w.mean('pm10', now, win);
            if (want === null || !Number.isFinite(want)) expect(got).toBe(want);
            else expect(got).toBeCloseTo(want, 9);
          }
      }
    }
    expect(new MeanWindows().mean('pm10', 0, 120)).toBeNull();
  });
  it('samples stamped before the last one (out of order) do not hide the window from its mean', () => {
    const e = engineAt(0);
    e.ingest(head(100_000, { windSpeed: 9.2 }));
    e.ingest(head(190_000, { windSpeed: 9.2 }));
    // late: stamped before the window of the mean at 200 s (80 s, 200 s]; a bisection that took the window as sorted would start past them and find nothing
    e.ingest(head(60_000, { windSpeed: 0.5 }));
    e.ingest(head(60_000, { windSpeed: 0.5 }));
    const stopped = e.evaluate(200_000).events.find((x) => x.type === 'sweeping_stopped');
    expect(stopped).toMatchObject({ beaufort: 5, windMean: 9.2 });
  });
});

describe('dust alarms with hysteresis', () => {
  const pm10 = RULES.dustAlarm.pm10;
  it('raises above warn, escalates above severe, clears only below clear', () => {
    expect(alarmStep('none', 150, pm10).change).toBeUndefined();
    expect(alarmStep('none', 150.1, pm10)).toMatchObject({ level: 'warn', change: 'raised', threshold: 150 });
    expect(alarmStep('none', 200.1, pm10)).toMatchObject({ level: 'severe', change: 'raised', threshold: 200 });
    expect(alarmStep('warn', 200, pm10).change).toBeUndefined();
    expect(alarmStep('warn', 200.1, pm10)).toMatchObject({ level: 'severe', change: 'escalated' });
    expect(alarmStep('warn', 120, pm10)).toMatchObject({ level: 'warn' });
    expect(alarmStep('warn', 140, pm10).change).toBeUndefined();
    expect(alarmStep('warn', 119.9, pm10)).toMatchObject({ level: 'none', change: 'cleared', threshold: 120 });
    expect(alarmStep('severe', 150, pm10)).toMatchObject({ level: 'severe' });
    expect(alarmStep('severe', 119.9, pm10)).toMatchObject({ level: 'none', change: 'cleared' });
  });
  it('pm2.5 and tsp use their own levels', () => {
    expect(alarmStep('none', 75.1, RULES.dustAlarm.pm25).change).toBe('raised');
    expect(alarmStep('none', 75, RULES.dustAlarm.pm25).change).toBeUndefined();
    expect(alarmStep('none', 800.1, RULES.dustAlarm.tsp).change).toBe('raised');
    expect(alarmStep('warn', 599.9, RULES.dustAlarm.tsp).change).toBe('cleared');
  });
});

describe('noise limits, day and night (local time)', () => {
  const cfg = RULES.noise;
  it('night is 22:00 to 06:00 local', () => {
    expect(isNight(cst('2026-06-01T21:59:59'), TZ, cfg)).toBe(false);
    expect(isNight(cst('2026-06-01T22:00:00'), TZ, cfg)).toBe(true);
    expect(isNight(cst('2026-06-02T05:59:59'), TZ, cfg)).toBe(true);
    expect(isNight(cst('2026-06-02T06:00:00'), TZ, cfg)).toBe(false);
  });
  it('70 dB by day, 55 dB by night, clear 3 dB below', () => {
    expect(noiseLimits(cst('2026-06-01T21:59:00'), TZ, cfg)).toEqual({ period: 'day', warn: 70, clear: 67 });
    expect(noiseLimits(cst('2026-06-01T22:00:00'), TZ, cfg)).toEqual({ period: 'night', warn: 55, clear: 52 });
  });
  it('a steady 60 dB raises an alarm when night starts', () => {
    const t0 = cst('2026-06-01T21:58:00');
    const e = engineAt(t0);
    let events: { type: string; metric?: unknown; state?: unknown; period?: unknown }[] = [];
    for (let t = t0; t <= cst('2026-06-01T22:01:00'); t += 10_000) {
      const r = e.step(t, [head(t, { noise: 60, temperature: 20 })]);
      events = events.concat(r.events.filter((x) => x.type === 'dust_alarm') as typeof events);
      if (t < cst('2026-06-01T22:00:00')) expect(events).toEqual([]);
    }
    expect(events).toEqual([expect.objectContaining({ metric: 'noise', state: 'raised', period: 'night' })]);
  });
});

describe('earthwork ban windows', () => {
  const cfg = RULES.earthworkBan;
  it('11-15 to 03-15 local, both days included', () => {
    expect(inBanPeriod(cst('2026-11-14T23:59:59'), TZ, cfg.periods)).toBe(false);
    expect(inBanPeriod(cst('2026-11-15T00:00:00'), TZ, cfg.periods)).toBe(true);
    expect(inBanPeriod(cst('2027-01-10T12:00:00'), TZ, cfg.periods)).toBe(true);
    expect(inBanPeriod(cst('2027-03-15T23:59:59'), TZ, cfg.periods)).toBe(true);
    expect(inBanPeriod(cst('2027-03-16T00:00:00'), TZ, cfg.periods)).toBe(false);
    // 11-14 16:00 UTC is already 11-15 in Zhengzhou
    expect(inBanPeriod(Date.parse('2026-11-14T16:00:00Z'), TZ, cfg.periods)).toBe(true);
  });
  it('orange and red alert levels ban earthwork all year', () => {
    const summer = cst('2026-07-01T10:00:00');
    expect(earthworkBanReason(summer, TZ, 'yellow', cfg)).toBeNull();
    expect(earthworkBanReason(summer, TZ, 'orange', cfg)).toBe('alert_level');
    expect(earthworkBanReason(summer, TZ, 'red', cfg)).toBe('alert_level');
    expect(earthworkBanReason(cst('2026-12-01T10:00:00'), TZ, 'none', cfg)).toBe('ban_period');
  });
  it('activity inside the window is a violation with a camera pulse; outside it is not', () => {
    const t0 = cst('2026-11-14T23:59:00');
    const e = engineAt(t0);
    const seen: string[] = [];
    for (let t = t0; t < t0 + 120_000; t += 1000) {
      const r = e.step(t, [dio(t, 0, 1)]);
      for (const ev of r.events) seen.push(`${ev.type}@${new Date(ev.ts).toISOString()}`);
    }
    expect(seen.filter((s) => s.startsWith('earthwork_violation'))).toEqual(['earthwork_violation@2026-11-14T16:00:00.000Z']);
    expect(seen).toContain('output_changed@2026-11-14T16:00:00.000Z');
  });
});

describe('inputs', () => {
  it('debounce: a level counts once it held for debounceMs; the edge time is when it was first seen', () => {
    let s = { raw: 0 as 0 | 1, rawSince: 0, stable: 0 as 0 | 1 };
    let r = debounceStep(s, 1, 1000, 50);
    expect(r.edge).toBeUndefined();
    s = r.state;
    r = debounceStep(s, 0, 1020, 50); // bounce
    expect(r.edge).toBeUndefined();
    s = debounceStep(r.state, 1, 1040, 50).state;
    r = debounceStep(s, 1, 1089, 50);
    expect(r.edge).toBeUndefined();
    r = debounceStep(r.state, 1, 1090, 50);
    expect(r.edge).toEqual({ rising: true, at: 1040 });
  });
  it('a video-trigger rising edge is one video_trigger event per press', () => {
    const e = engineAt(0);
    const events: { type: string; input?: unknown; edgeAt?: unknown }[] = [];
    const seq = [0, 0, 1, 1, 1, 0, 0, 1, 1, 0];
    seq.forEach((v, i) => events.push(...(e.step(i * 100, [dio(i * 100, v)]).events as typeof events)));
    expect(events.filter((x) => x.type === 'video_trigger')).toEqual([
      expect.objectContaining({ input: 'gateCamera', edgeAt: new Date(200).toISOString() }),
      expect.objectContaining({ input: 'gateCamera', edgeAt: new Date(700).toISOString() }),
    ]);
  });
});

describe('engine: spray linkage, frost, alert profiles, output safety', () => {
  const T0 = cst('2026-06-01T10:00:00');
  type Ev = { type: string; [k: string]: unknown };
  function run(e: RulesEngine, from: number, to: number, values: (t: number) => Record<string, number>, stepMs = 1000) {
    const events: Ev[] = [];
    const commands: { output: string; on: boolean; reason: string; t: number }[] = [];
    for (let t = from; t < to; t += stepMs) {
      const r = e.step(t, [head(t, values(t))]);
      events.push(...(r.events as Ev[]));
      commands.push(...r.commands.map((c) => ({ ...c, t })));
    }
    return { events, commands };
  }

  it('a warm dust alarm sprays for sprayS, rests sprayRestS, repeats, and pulses the camera', () => {
    const e = engineAt(T0);
    const { events, commands } = run(e, T0, T0 + 1_200_000, () => ({ pm10: 180, temperature: 18 }));
    expect(events.filter((x) => x.type === 'dust_alarm')).toEqual([expect.objectContaining({ state: 'raised', level: 'warn', metric: 'pm10', threshold: 150 })]);
    const sprinkler = commands.filter((c) => c.output === 'sprinkler');
    expect(sprinkler.map((c) => [c.on, (c.t - T0) / 1000, c.reason])).toEqual([
      [true, 0, 'dust_alarm'],
      [false, 600, 'spray_done'],
      [true, 900, 'dust_alarm'],
    ]);
    const cam = commands.filter((c) => c.output === 'cameraTrigger');
    expect(cam.map((c) => [c.on, c.t - T0, c.reason])).toEqual([
      [true, 0, 'dust_alarm_pm10'],
      [false, 1000, 'pulse_end'],
    ]);
    // greenbelt at 18 °C sprays too
    expect(commands.some((c) => c.output === 'greenbelt' && c.on)).toBe(true);
  });

  it('frost: a dust alarm at 3.9 °C is blocked with temperature_below_min; a running spray stops when it gets cold', () => {
    const e = engineAt(T0);
    let r = run(e, T0, T0 + 10_000, () => ({ pm10: 180, temperature: 3.9 }));
    expect(r.commands.filter((c) => c.output === 'sprinkler')).toEqual([]);
    expect(r.events.filter((x) => x.type === 'sprinkler_blocked' && x.output === 'sprinkler')).toEqual([
      expect.objectContaining({ reason: 'temperature_below_min', temperature: 3.9, limit: 4 }),
    ]);
    // warms to 4.0: the road sprinkler starts (after minOffS from start-up is not required: it was never on)
    r = run(e, T0 + 10_000, T0 + 20_000, () => ({ pm10: 180, temperature: 4.0 }));
    expect(r.commands.filter((c) => c.output === 'sprinkler').map((c) => c.on)).toEqual([true]);
    expect(r.commands.some((c) => c.output === 'greenbelt' && c.on)).toBe(false);
    // drops to 3.9: off at once
    r = run(e, T0 + 20_000, T0 + 22_000, () => ({ pm10: 180, temperature: 3.9 }));
    expect(r.commands.filter((c) => c.output === 'sprinkler')).toEqual([expect.objectContaining({ on: false, reason: 'temperature_below_min' })]);
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'sprinkler_stopped', output: 'sprinkler', reason: 'temperature_below_min' }));
  });

  it('no temperature at all: blocked as temperature_unknown; a stale one too', () => {
    const e = engineAt(T0);
    const r = run(e, T0, T0 + 5000, () => ({ pm10: 180 }));
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'sprinkler_blocked', output: 'sprinkler', reason: 'temperature_unknown' }));
    expect(e.request('sprinkler', true, T0 + 6000).code).toBe('temperature_unknown');
    const e2 = engineAt(T0);
    e2.step(T0, [head(T0, { temperature: 10 })]);
    expect(e2.request('sprinkler', true, T0 + 300_000).ok).toBe(true);
    e2.request('sprinkler', false, T0 + 300_001);
    e2.step(T0 + 300_002);
    // stale by now; minOffS would also hold, but the frost check comes first
    expect(e2.request('sprinkler', true, T0 + 400_000).code).toBe('temperature_unknown');
  });

  it('requests obey minOffS and maxOnS', () => {
    const e = engineAt(T0);
    e.step(T0, [head(T0, { temperature: 10 })]);
    expect(e.request('sprinkler', true, T0).ok).toBe(true);
    const { commands } = run(e, T0 + 1000, T0 + 1_900_000, () => ({ temperature: 10 }));
    const off = commands.find((c) => c.output === 'sprinkler' && !c.on)!;
    expect(off.reason).toBe('max_on_time');
    expect(off.t - T0).toBe(1_800_000);
    expect(e.request('sprinkler', true, off.t + 59_000)).toMatchObject({ ok: false, code: 'min_off_time' });
    expect(e.request('sprinkler', true, off.t + 60_000).ok).toBe(true);
  });

  it('a red alert lowers the pm10 warn level to 100 and shortens sprayRestS', () => {
    expect(effectiveRules(RULES, 'red').dustAlarm.pm10).toEqual({ warn: 100, severe: 200, clear: 120 });
    expect(effectiveRules(RULES, 'red').dustAlarm.sprayRestS).toBe(60);
    expect(effectiveRules(RULES, 'yellow')).toEqual(RULES);
    const e = engineAt(T0);
    let r = run(e, T0, T0 + 5000, () => ({ pm10: 130, temperature: 18 }));
    expect(r.events.filter((x) => x.type === 'dust_alarm')).toEqual([]);
    e.setAlertLevel('red', T0 + 5000);
    r = run(e, T0 + 5000, T0 + 10_000, () => ({ pm10: 130, temperature: 18 }));
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'alert_level', level: 'red' }));
    expect(r.events).toContainEqual(expect.objectContaining({ type: 'dust_alarm', state: 'raised', threshold: 100 }));
  });

  it('sweepStopSignal follows sweeping (on = stop)', () => {
    const e = engineAt(T0);
    const { events, commands } = run(e, T0, T0 + 1_000_000, (t) => ({ windSpeed: t - T0 < 200_000 ? 4.0 : 2.0, temperature: 18 }));
    const sig = commands.filter((c) => c.output === 'sweepStopSignal');
    expect(sig.map((c) => c.on)).toEqual([true, false]);
    const stopped = events.find((x) => x.type === 'sweeping_stopped')!;
    const allowed = events.find((x) => x.type === 'sweeping_allowed')!;
    expect(stopped).toMatchObject({ beaufort: 3 });
    // mean over 120 s drops below 3.4 about 40 s after the change to 2.0, then 600 s more
    expect((allowed.ts as number) - T0).toBeGreaterThanOrEqual(200_000 + 600_000);
    expect((allowed.ts as number) - T0).toBeLessThan(200_000 + 120_000 + 600_000);
  });
});
