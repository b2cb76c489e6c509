/**
 * The rules run on readings, on the deadlines the engine names and on a 1 s heartbeat
 * (gateway/rules-clock.ts), no longer every 250 ms. This drives one engine the way the gateway now
 * does and another on a 10 ms tick through the same two and a half minutes of a site (spray cycles
 * ended by sprayS or cut by maxOnS, rests, minOffS, pulses from the alarm and from an operator, a timed command,
 * sweeping stopped and resumed, the temperature going stale under a running sprinkler): the same
 * events, each within the tick's 10 ms. A deadline the engine failed to name would come at the
 * next heartbeat or reading instead, up to a second late. One kind may be that late by design: a
 * mean that crosses a limit as old samples leave its window, between two readings (here the wind
 * mean falling below Beaufort 3, which starts the resume delay): the heartbeat sees it.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../gateway/config/load.js';
import { RulesEngine, type RuleEvent } from '../../gateway/rules/engine.js';
import type { Reading } from '../../gateway/reading.js';

const T0 = Date.parse('2026-06-01T10:00:00+08:00'); // a June morning: no ban, day noise limits
const S = 1000;

function engine(): RulesEngine {
  const c = resolveConfig({
    gateway: { id: 'deadlines' },
    buses: [{ id: 'line1', type: 'tcp', host: '127.0.0.1', port: 1502 }],
    devices: [
      { id: 'head', bus: 'line1', unit: 1, driver: 'cwt-weather-station' },
      { id: 'relays', bus: 'line1', unit: 2, driver: 'waveshare-relay-8ch' },
    ],
    outputs: {
      sprinkler: { device: 'relays', channel: 1, kind: 'road' },
      greenbelt: { device: 'relays', channel: 4, kind: 'greenbelt', maxOnS: 9 },
      sweepStopSignal: { device: 'relays', channel: 2 },
      cameraTrigger: { device: 'relays', channel: 3, pulseMs: 500 },
      fogCannon: { device: 'relays', channel: 5 },
    },
    rules: {
      sprinkling: { tempMaxAgeS: 9 },
      sweeping: { windAverageS: 10, resumeAfterS: 7 },
      dustAlarm: { sprayS: 12, sprayRestS: 10, onWarn: ['spray', 'cameraTrigger'] },
      outputs: { maxOnS: 15, minOffS: 12 },
    },
  }).config;
  return new RulesEngine({ rules: c.rules, outputs: c.outputs, inputs: {}, sources: { temperature: 'head', windSpeed: 'head', pm10: 'head' }, timezone: 'Asia/Shanghai' }, T0);
}

/**
 * What happens, in time order: a reading of the head every 1.3 s (so that the deadlines, whole
 * seconds after a reading, fall between readings: a missed one shows), and two operator requests.
 */
type Step = { at: number; reading?: Reading; request?: { name: string; durationS?: number } };
function script(): Step[] {
  const steps: Step[] = [];
  for (let t = 0; t <= 150 * S; t += 1300) {
    const values: Record<string, number> = { pm10: 250, windSpeed: t >= 70 * S && t < 100 * S ? 9 : 0.5 };
    if (t < 125 * S) values.temperature = 10; // then the thermometer goes quiet: stale 9 s later, a sprinkler on
    steps.push({ at: T0 + t, reading: { device: 'head', ts: T0 + t, values, flags: Object.fromEntries(Object.keys(values).map((k) => [k, 'N'])) } });
  }
  steps.push({ at: T0 + 60_250, request: { name: 'cameraTrigger' } }); // a pulse asked for by an operator
  steps.push({ at: T0 + 61_700, request: { name: 'fogCannon', durationS: 3.3 } }); // a timed command
  return steps.sort((a, b) => a.at - b.at);
}

const END = T0 + 160 * S;

function apply(e: RulesEngine, step: Step): RuleEvent[] {
  if (step.reading) e.ingest(step.reading, step.at);
  if (step.request) e.request(step.request.name, true, step.at, { durationS: step.request.durationS });
  return e.drainEvents();
}

/** The old way, finer: evaluate every 10 ms, and on each step. */
function onTick(): RuleEvent[] {
  const e = engine();
  const out: RuleEvent[] = [];
  const steps = script();
  let i = 0;
  for (let t = T0; t <= END; t += 10) {
    while (i < steps.length && steps[i]!.at <= t) {
      out.push(...apply(e, steps[i]!));
      out.push(...e.evaluate(steps[i]!.at).events);
      i++;
    }
    out.push(...e.evaluate(t).events);
  }
  return out;
}

/** The new way: evaluate on each step, at each deadline the engine names, and on a heartbeat 1 s apart (off the readings' phase). */
function onDeadlines(): { events: RuleEvent[]; evaluations: number } {
  const e = engine();
  const out: RuleEvent[] = [];
  const steps = script();
  let i = 0;
  let beat = T0 + 400;
  let deadline = Infinity;
  let evaluations = 0;
  const evaluate = (t: number) => {
    out.push(...e.evaluate(t).events);
    evaluations++;
    deadline = e.nextDeadline(t);
  };
  for (;;) {
    const t = Math.min(steps[i]?.at ?? Infinity, beat, deadline);
    if (t > END) break;
    if (steps[i]?.at === t) {
      out.push(...apply(e, steps[i]!));
      i++;
    }
    if (beat === t) beat += S;
    evaluate(t);
  }
  return { events: out, evaluations };
}

const key = (ev: RuleEvent) => {
  const { ts: _ts, ...rest } = ev as RuleEvent & Record<string, unknown>;
  return JSON.stringify(rest);
};

describe('rules on deadlines and a heartbeat', () => {
  it('the same events as a 10 ms tick, each within 10 ms of it, with a small part of the evaluations', () => {
    const fine = onTick();
    const { events, evaluations } = onDeadlines();
    // the script does reach every timed rule
    const reasons = new Set(fine.filter((e) => e.type === 'output_changed').map((e) => (e as { reason: string }).reason));
    for (const r of ['dust_alarm', 'spray_done', 'max_on_time', 'pulse_end', 'duration_end', 'temperature_unknown']) expect(reasons, r).toContain(r);
    expect(fine.map((e) => e.type)).toContain('sweeping_allowed');
    expect(events.map(key)).toEqual(fine.map(key));
    const drift = (type: string, reason?: string) => type === 'sweeping_allowed' || reason === 'sweeping_allowed';
    const late = events
      .map((e, k) => ({ type: e.type, reason: (e as { reason?: string }).reason, by: e.ts - fine[k]!.ts }))
      .filter((d) => d.by < -10 || d.by > (drift(d.type, d.reason) ? 1000 : 10)); // the tick sees a deadline up to 10 ms after it
    expect(late).toEqual([]);
    // about a reading, a heartbeat and a few deadlines a second (the tick: 100 a second)
    expect(evaluations).toBeLessThan(2.5 * 160);
  });

  it('names each kind of deadline on its own, and Infinity when nothing is timed', () => {
    const e = engine();
    expect(e.nextDeadline(T0)).toBe(Infinity);
    // a warm reading: the temperature is usable until 9 s later (stale strictly after)
    e.ingest({ device: 'head', ts: T0, values: { temperature: 10, windSpeed: 0.5 }, flags: { temperature: 'N', windSpeed: 'N' } }, T0);
    e.evaluate(T0);
    expect(e.nextDeadline(T0)).toBe(T0 + 9_000 + 1);
    // a pulse: its end comes first
    e.request('cameraTrigger', true, T0 + 100);
    e.evaluate(T0 + 100);
    expect(e.nextDeadline(T0 + 100)).toBe(T0 + 600);
    e.evaluate(T0 + 600);
    // a sprinkler on: maxOnS (15 s) after, unless the temperature goes stale first (9 s)
    e.request('sprinkler', true, T0 + 1_000);
    e.evaluate(T0 + 1_000);
    e.ingest({ device: 'head', ts: T0 + 8_000, values: { temperature: 10 }, flags: { temperature: 'N' } }, T0 + 8_000);
    expect(e.nextDeadline(T0 + 8_000)).toBe(T0 + 16_000);
    // off: minOffS (12 s) from now on
    e.request('sprinkler', false, T0 + 9_000);
    e.evaluate(T0 + 9_000);
    expect(e.nextDeadline(T0 + 9_000)).toBe(T0 + 8_000 + 9_001);
    expect(e.nextDeadline(T0 + 17_400)).toBe(T0 + 21_000);
    // a deadline in the past is not named (the next one is)
    expect(e.nextDeadline(T0 + 21_000)).toBe(Infinity);
    // sweeping stopped by a strong wind, then the mean falls below: resumeAfterS (7 s) from there
    const wind = (t: number, v: number) => e.ingest({ device: 'head', ts: t, values: { windSpeed: v }, flags: { windSpeed: 'N' } }, t);
    wind(T0 + 30_000, 20);
    expect(e.evaluate(T0 + 30_000).events.map((x) => x.type)).toContain('sweeping_stopped');
    wind(T0 + 45_000, 0.5); // the 20 m/s sample has left the 10 s window
    e.evaluate(T0 + 45_000);
    expect(e.nextDeadline(T0 + 45_000)).toBe(T0 + 52_000);
    expect(e.evaluate(T0 + 51_999).events).toEqual([]);
    expect(e.evaluate(T0 + 52_000).events.map((x) => x.type)).toContain('sweeping_allowed');
  });
});
