/**
 * The rule scenarios end to end: simulator (serialport mock binding) → gateway → aedes → an MQTT
 * subscriber, on a scaled clock. Relay states are checked where they really are: the simulator's
 * coils, written by the gateway over Modbus. The frost and dust scenarios run twice, with the same
 * test code: once with the sprinkler, camera and gate input on Modbus relay and DI modules, once on
 * the pins of an Arduino running StandardFirmata (a virtual board, driven through johnny-five).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { beaufort } from '../../drivers/devices/beaufort.js';
import { type InProcessRig, IO_LAYOUT, type IoKind, JUNE_10AM, startInProcess } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

type Ev = Record<string, unknown> & { type: string; ts: string };
/** Scenario seconds of an ISO timestamp. */
function simT(r: InProcessRig, iso: string): number {
  const t0 = r.now() - r.t() * 1000;
  return (Date.parse(iso) - t0) / 1000;
}
/** What the gateway switched on an output's relay, in scenario seconds. */
const coils = (r: InProcessRig, output: 'sprinkler' | 'sweepStopSignal' | 'cameraTrigger') => r.relays.coilLog.filter((c) => c.channel === IO_LAYOUT[r.io][output]);
/** The relay's state now, as the simulated module or board holds it. */
const relayNow = (r: InProcessRig, output: 'sprinkler' | 'cameraTrigger') => r.relays.overrides[`ch${IO_LAYOUT[r.io][output]}`];
const IO_KINDS: IoKind[] = ['modbus', 'firmata'];

describe.each(IO_KINDS)('frost-morning (outputs on %s)', (io) => {
  it('never sprays below 4.0 °C, reports the block, and stops a running spray when it gets cold', async () => {
    rig = await startInProcess('frost-morning', { io, factor: 40, startMs: JUNE_10AM, rules: { dustAlarm: { sprayS: 1200 } } });
    const r = rig;
    await waitFor(() => r.t() >= 960, 60_000, 200);
    // temperature: below 4 until 300 s (2.0 → 3.9), 4.0–6.0 from 300 to 900 s, 3.0 from 900 s
    const on = coils(r, 'sprinkler').filter((c) => c.on);
    const off = coils(r, 'sprinkler').filter((c) => !c.on);
    expect(on.length).toBeGreaterThan(0);
    for (const c of on) {
      expect(c.t).toBeGreaterThanOrEqual(300);
      expect(c.t).toBeLessThan(900);
    }
    // the spray that ran across 900 s went off within a poll or two of the drop
    const stopAt = off.find((c) => c.t >= 900);
    expect(stopAt, 'sprinkler switched off after the drop to 3.0 °C').toBeDefined();
    expect(stopAt!.t - 900).toBeLessThan(20);
    expect(relayNow(r, 'sprinkler')).toBe(0);

    const events = r.sub.events() as Ev[];
    const raised = events.find((e) => e.type === 'dust_alarm' && e.state === 'raised');
    expect(raised).toMatchObject({ metric: expect.stringMatching(/pm10|pm25/), level: expect.any(String) });
    const blocked = events.filter((e) => e.type === 'sprinkler_blocked');
    expect(blocked[0]).toMatchObject({ output: 'sprinkler', reason: 'temperature_below_min', limit: 4 });
    expect(simT(r, blocked[0]!.ts)).toBeLessThan(300);
    expect(blocked[0]!.temperature as number).toBeLessThan(4);
    const stopped = events.find((e) => e.type === 'sprinkler_stopped');
    expect(stopped).toMatchObject({ output: 'sprinkler', reason: 'temperature_below_min' });
    expect(simT(r, stopped!.ts)).toBeGreaterThanOrEqual(900);
    // every switch is an event with its reason
    const changes = events.filter((e) => e.type === 'output_changed' && e.output === 'sprinkler');
    expect(changes.map((e) => `${e.state}:${e.reason}`)).toEqual(expect.arrayContaining(['on:dust_alarm', 'off:temperature_below_min']));
    // state says so, retained
    const state = r.sub.on('state').at(-1)!.payload as { sprinkling: { allowed: boolean; reason: string } };
    expect(state.sprinkling).toMatchObject({ allowed: false, reason: 'temperature_below_min' });
  });
});

describe('windy-afternoon', () => {
  it('stops sweeping when the 2-minute mean reaches 3.4 m/s and allows it only resumeAfterS later; the signal follows', async () => {
    rig = await startInProcess('windy-afternoon', { factor: 50, startMs: JUNE_10AM, rules: { sweeping: { resumeAfterS: 300 } } });
    const r = rig;
    await waitFor(() => r.sub.events('sweeping_allowed').length > 0, 60_000, 200);
    await waitFor(() => coils(r, 'sweepStopSignal').some((c) => !c.on), 5000);
    const sweep = r.sub.events().filter((e) => String(e.type).startsWith('sweeping_')) as Ev[];
    expect(sweep.map((e) => e.type)).toEqual(['sweeping_stopped', 'sweeping_allowed']);
    const [stopped, allowed] = sweep as [Ev, Ev];
    expect(stopped.beaufort).toBe(3);
    expect(stopped.windMean as number).toBeGreaterThanOrEqual(3.35);
    // 3.3 m/s from 60 s, 3.6 from 180 s: the mean crosses 3.35 about 20 s after 180 s
    expect(simT(r, stopped.ts)).toBeGreaterThan(180);
    expect(simT(r, stopped.ts)).toBeLessThan(260);

    // recompute the 120 s mean from the telemetry the subscriber got: when did it go below level 3?
    const wind = r.sub.readings('head').map((x) => ({ t: Date.parse(x.ts as string), v: (x.values as Record<string, number>).windSpeed! }));
    const stopMs = Date.parse(stopped.ts);
    let belowAt: number | undefined;
    for (const s of wind) {
      if (s.t <= stopMs) continue;
      const win = wind.filter((w) => w.t > s.t - 120_000 && w.t <= s.t);
      const mean = win.reduce((a, w) => a + w.v, 0) / win.length;
      if (beaufort(mean) < 3) {
        belowAt = s.t;
        break;
      }
    }
    expect(belowAt).toBeDefined();
    const waited = (Date.parse(allowed.ts) - belowAt!) / 1000;
    expect(waited).toBeGreaterThanOrEqual(300 - 6); // one poll (5 s of scenario time) of slack
    expect(waited).toBeLessThan(300 + 15);

    const sig = coils(r, 'sweepStopSignal');
    expect(sig.map((c) => c.on)).toEqual([true, false]);
    expect(sig[0]!.t).toBeGreaterThanOrEqual(simT(r, stopped.ts) - 1);
    expect(sig[1]!.t).toBeGreaterThanOrEqual(simT(r, allowed.ts) - 1);
  });
});

describe.each(IO_KINDS)('dust-event (outputs on %s)', (io) => {
  it('raises, escalates and clears the alarm with hysteresis; sprays while warm, pulses the camera, reports the gate camera', async () => {
    // 40×: a real-time hiccup of a quarter second is 10 s of scenario missing from the 5-minute means
    rig = await startInProcess('dust-event', { io, factor: 40, startMs: JUNE_10AM });
    const r = rig;
    await waitFor(() => r.sub.events('dust_alarm').some((e) => e.metric === 'pm10' && e.state === 'cleared'), 60_000, 200);
    await waitFor(() => relayNow(r, 'sprinkler') === 0, 5000);
    const pm10 = r.sub.events('dust_alarm').filter((e) => e.metric === 'pm10') as Ev[];
    expect(pm10.map((e) => [e.state, e.level, e.threshold])).toEqual([
      ['raised', 'warn', 150],
      ['escalated', 'severe', 200],
      ['cleared', 'none', 120],
    ]);
    expect(pm10[0]!.value as number).toBeGreaterThan(150);
    expect(pm10[2]!.value as number).toBeLessThan(120);
    // the 5-minute mean of 165 passes 150 near 300 s; of 230 passes 200 near 460 s; of 100 falls below 120 near 1050 s
    // (a device that went offline thins the samples a mean is taken over: say so if these fail). The mean is of
    // samples, so the first crossing moves with how densely the first minute (90 before the step to 165 at 60 s)
    // was polled: with 236 samples in minute 0 against ~360 after (start-up on a loaded box) it came at 225 s.
    // An alarm on the reading itself would come at 60 s: the bound is well after that, not at 300 s.
    const perMinute = new Map<number, number>();
    for (const x of r.sub.readings('head')) {
      const m = Math.floor(simT(r, x.ts as string) / 60);
      perMinute.set(m, (perMinute.get(m) ?? 0) + 1);
    }
    const health = `device status events: ${JSON.stringify(r.sub.events('device_status').map((e) => [e.device, e.status, simT(r, e.ts as string)]))}; head readings per scenario minute: ${JSON.stringify([...perMinute])}`;
    expect(simT(r, pm10[0]!.ts), health).toBeGreaterThan(150);
    expect(simT(r, pm10[1]!.ts), health).toBeGreaterThan(400);
    expect(simT(r, pm10[2]!.ts), health).toBeGreaterThan(950);

    const spray = coils(r, 'sprinkler');
    expect(spray[0]).toMatchObject({ on: true });
    expect(spray[0]!.t).toBeGreaterThanOrEqual(simT(r, pm10[0]!.ts) - 1);
    expect(spray.at(-1)).toMatchObject({ on: false });
    const cam = coils(r, 'cameraTrigger');
    expect(cam.length).toBeGreaterThanOrEqual(2);
    expect(cam[0]).toMatchObject({ on: true });
    expect(cam[1]).toMatchObject({ on: false });
    expect(r.sub.events('output_changed').filter((e) => e.output === 'cameraTrigger' && e.state === 'off').every((e) => e.reason === 'pulse_end')).toBe(true);

    const video = r.sub.events('video_trigger') as Ev[];
    expect(video.map((e) => e.input)).toEqual(['gateCamera', 'gateCamera']);
    expect(simT(r, video[0]!.edgeAt as string)).toBeGreaterThanOrEqual(119);
    expect(simT(r, video[0]!.edgeAt as string)).toBeLessThan(128);
    expect(simT(r, video[1]!.edgeAt as string)).toBeGreaterThanOrEqual(499);
    expect(simT(r, video[1]!.edgeAt as string)).toBeLessThan(508);
  });

  it('stopping the gateway switches a running sprinkler off and reads it back', async () => {
    rig = await startInProcess('dust-event', { io, factor: 1, startMs: JUNE_10AM });
    const r = rig;
    r.sim.setValues('head', { pm10: 400 });
    await waitFor(() => relayNow(r, 'sprinkler') === 1, 10_000);
    await r.gw.stop('shutdown');
    expect(relayNow(r, 'sprinkler')).toBe(0);
    expect(r.gw.outputs.actual.sprinkler).toBe('off');
    await waitFor(() => r.sub.events('output_changed').some((e) => e.output === 'sprinkler' && e.state === 'off' && e.reason === 'shutdown'), 3000);
    await waitFor(() => r.sub.on('status').at(-1)!.payload.state === 'offline', 3000);
  });

});

describe('dust-event (Modbus modules)', () => {
  it('start-up switches every output off and reads it back; a relay found in the wrong state is a fault and is put back', async () => {
    // a relay left on (by hand, or by a gateway that lost power) before the gateway starts
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM, beforeStart: (sim) => sim.setValues('relays', { ch1: 1, ch3: 1 }) });
    const r = rig;
    expect(r.sim.device('relays')!.overrides).toMatchObject({ ch1: 0, ch3: 0 });
    expect(r.gw.outputs.actual).toEqual({ sprinkler: 'off', sweepStopSignal: 'off', cameraTrigger: 'off' });
    // someone switches the sprinkler on at the module: the next poll sees it, reports it, switches it back
    r.sim.setValues('relays', { ch1: 1 });
    await waitFor(() => r.sub.events('output_fault').length > 0, 10_000);
    expect(r.sub.events('output_fault')[0]).toMatchObject({ output: 'sprinkler', wanted: 'off', actual: 'on', reason: 'state_mismatch' });
    await waitFor(() => r.sim.device('relays')!.overrides.ch1 === 0, 5000);
    // a relay module that refuses writes: the switch is a write_failed fault and the output is unknown
    r.sim.setFaults('relays', ['exception:4']);
    r.sim.setValues('head', { pm10: 400 });
    await waitFor(() => r.sub.events('output_fault').some((e) => e.reason === 'write_failed'), 10_000);
    expect(r.gw.outputs.actual.sprinkler).toBe('unknown');
  });

  it('flags reach the subscriber: T over range, B for a device that stops answering, which goes offline in the state', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    r.sim.setValues('head', { pm10: 1500 });
    await waitFor(() => r.sub.readings('head').some((x) => (x.values as Record<string, number>).pm10 === 1500), 10_000);
    const over = r.sub.readings('head').find((x) => (x.values as Record<string, number>).pm10 === 1500)!;
    expect(over.flags).toMatchObject({ pm10: 'T', pm25: 'N', temperature: 'N' });
    r.sim.setFaults('dio', ['timeout']);
    await waitFor(() => r.sub.events('device_status').some((e) => e.device === 'dio' && e.status === 'offline'), 10_000);
    const gap = r.sub.readings('dio').find((x) => Object.keys(x.values as object).length === 0)!;
    expect(gap.flags).toEqual(Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`ch${i + 1}`, 'B'])));
    await waitFor(() => (r.sub.on('state').at(-1)?.payload.devices as Record<string, string>)?.dio === 'offline', 5000);
    const last = r.sub.on('state').at(-1)!.payload as { devices: Record<string, string> };
    expect(last.devices).toEqual({ head: 'online', relays: 'online', dio: 'offline' });
  });
});
