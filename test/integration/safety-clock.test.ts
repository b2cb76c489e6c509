/**
 * Durations on a monotonic clock (issue "Safety under faults", SPEC §1): the gateway's system clock
 * is stepped back an hour and forward two while a camera pulse, a maxOnS spray and a dust-alarm
 * average run. The monotonic clock (the scenario's own, 20× real time) runs on. Pulses and maxOnS
 * end on time, the alarm holds, minute aggregates keep coming with no period made twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayClock } from '../../gateway/clock.js';
import { JUNE_10AM, startInProcess, type InProcessRig } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop().catch(() => undefined);
  rig = undefined;
});

const FACTOR = 20;
/** One poll of the head (100 ms real) and one tick, in scenario seconds. */
const SLACK_S = (0.1 + 0.05) * FACTOR + 0.5;

/** On-periods of a relay channel from the simulator's coil log (scenario seconds). */
function onPeriods(r: InProcessRig, ch: number): { from: number; to?: number }[] {
  const out: { from: number; to?: number }[] = [];
  for (const c of r.relays.coilLog.filter((x) => x.channel === ch)) {
    if (c.on) out.push({ from: c.t });
    else if (out.length && out.at(-1)!.to === undefined) out.at(-1)!.to = c.t;
  }
  return out;
}

describe('the wall clock steps, durations do not', () => {
  it('−1 h and +2 h while a pulse, a maxOnS spray and an alarm average run: both end on time, the alarm holds, minute aggregates go on without a period twice', async () => {
    rig = await startInProcess('dust-event', {
      factor: FACTOR,
      startMs: JUNE_10AM,
      rules: { dustAlarm: { onWarn: [] } },
      extra: {
        outputs: {
          sprinkler: { device: 'relays', channel: 1, kind: 'road', maxOnS: 40, minOffS: 0 },
          sweepStopSignal: { device: 'relays', channel: 2 },
          cameraTrigger: { device: 'relays', channel: 3, pulseMs: 10_000 },
        },
      },
    });
    const r = rig;
    r.sim.setValues('head', { pm10: 400, temperature: 15 });
    await waitFor(() => r.gw.state().alarms.pm10 === 'severe' && r.gw.state().sprinkling.allowed, 10_000);
    await waitFor(() => r.sub.on('aggregates').some((m) => m.payload.period === 'minute' && m.payload.device === 'head'), 20_000);

    for (const [step, label] of [
      [-3600_000, 'back 1 h'],
      [2 * 3600_000, 'forward 2 h'],
    ] as const) {
      const sprays = onPeriods(r, 1).length;
      const pulses = onPeriods(r, 3).length;
      expect(r.gw.requestOutput('sprinkler', true).ok, label).toBe(true);
      expect(r.gw.requestOutput('cameraTrigger', true).ok, label).toBe(true);
      await waitFor(() => onPeriods(r, 1).length > sprays && onPeriods(r, 3).length > pulses, 5000);
      r.stepClock(step);
      await waitFor(() => onPeriods(r, 1).at(-1)!.to !== undefined, 40_000 / FACTOR + 5000);
      await waitFor(() => onPeriods(r, 3).at(-1)!.to !== undefined, 5000);
      const spray = onPeriods(r, 1).at(-1)!;
      const pulse = onPeriods(r, 3).at(-1)!;
      expect(spray.to! - spray.from, `${label}: maxOnS 40 s`).toBeGreaterThanOrEqual(40 - SLACK_S);
      expect(spray.to! - spray.from, `${label}: maxOnS 40 s`).toBeLessThanOrEqual(40 + SLACK_S);
      expect(pulse.to! - pulse.from, `${label}: pulse 10 s`).toBeGreaterThanOrEqual(10 - SLACK_S);
      expect(pulse.to! - pulse.from, `${label}: pulse 10 s`).toBeLessThanOrEqual(10 + SLACK_S);
      await waitFor(() => r.sub.events('output_changed').filter((e) => e.output === 'sprinkler' && e.reason === 'max_on_time').length === (step < 0 ? 1 : 2), 5000);
      // the alarm's 5-minute mean was not emptied by the step
      expect(r.gw.state().alarms.pm10, label).toBe('severe');
    }
    expect(r.sub.events('dust_alarm').filter((e) => e.metric === 'pm10' && e.state === 'cleared')).toEqual([]);
    const steps = r.sub.events('clock_step');
    expect(steps.map((e) => e.action)).toEqual(['held', 'followed']);

    // minute aggregates: two more minutes after the last step, then look at the periods
    const seen = () => r.sub.on('aggregates').filter((m) => m.payload.period === 'minute' && m.payload.device === 'head').map((m) => Date.parse(m.payload.start as string));
    const n = seen().length;
    await waitFor(() => seen().length >= n + 2, (2 * 60_000) / FACTOR + 10_000);
    const starts = seen();
    expect(new Set(starts).size, `no minute twice: ${starts.map((s) => new Date(s).toISOString().slice(11, 16)).join(' ')}`).toBe(starts.length);
    const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
    // every step between periods is one minute, except at the forward step: the gateway's clock had
    // run on through the hour back, so +2 h of system clock moves it on by 1 h (a minute either way)
    const odd = gaps.filter((g) => g !== 60_000);
    expect(odd.length).toBeLessThanOrEqual(1);
    for (const g of odd) expect(Math.abs(g - 3600_000)).toBeLessThanOrEqual(60_000);
    expect(Math.abs((steps[1]!.deltaS as number) - 3600)).toBeLessThan(5);
    expect(gaps.every((g) => g > 0)).toBe(true);
  });
});

describe('GatewayClock', () => {
  it('holds a backward step at the monotonic rate until the system clock catches up, follows a forward one, and says so once each', () => {
    let sys = 1_000_000;
    let mono = 0;
    const steps: unknown[] = [];
    const c = new GatewayClock(
      () => sys,
      () => mono,
      (s) => steps.push(s),
    );
    expect(c.now()).toBe(1_000_000);
    mono += 1000;
    sys += 1000;
    expect(c.now()).toBe(1_001_000);
    sys -= 3600_000; // back an hour
    mono += 500;
    expect(c.now()).toBe(1_001_500);
    mono += 500;
    sys += 500;
    expect(c.now()).toBe(1_002_000);
    expect(steps).toEqual([{ deltaMs: -3600_500, action: 'held' }]);
    expect(c.wallOf(mono - 2000)).toBe(1_000_000);
    expect(c.monoOf(1_001_000)).toBe(mono - 1000);
    sys = 1_002_000 + 7200_000; // and forward
    mono += 0;
    expect(c.now()).toBe(1_002_000 + 7200_000);
    expect(steps).toHaveLength(2);
    expect(steps[1]).toMatchObject({ action: 'followed' });
    // small jitter back is not a step and time does not go back
    sys -= 500;
    expect(c.now()).toBe(1_002_000 + 7200_000);
    expect(steps).toHaveLength(2);
  });
});
