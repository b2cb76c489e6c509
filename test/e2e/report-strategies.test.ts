/**
 * Report strategies over the simulator and a real broker: a deadband's edge, a heartbeat, relays and
 * inputs sent on change (a relay change within one poll), events never filtered, and minute
 * aggregates computed from every poll while the telemetry is sparse.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessRig } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HEAD = { temperature: 20, pm10: 60, pm25: 30, windSpeed: 1, windDirection: 90, humidity: 50, noise: 55, pressure: 100.5 };
type Row = { ts: string; seq: number; values: Record<string, number>; flags: Record<string, string> };

describe('report strategies over the simulator', () => {
  it('deadband edge, heartbeat, relays and inputs on change (a relay change within one poll), every event delivered', async () => {
    rig = await startInProcess('dust-event', {
      factor: 1,
      beforeStart: (sim) => sim.setValues('head', HEAD),
      extra: {
        devices: [
          { id: 'head', bus: 'main', unit: 1, driver: 'cwt-weather-station', pollMs: 100, report: { strategy: 'onChange', deadband: 0.5, metrics: { windSpeed: { heartbeatS: 2 } } } },
          { id: 'relays', bus: 'main', unit: 2, driver: 'waveshare-relay-8ch', pollMs: 200 },
          { id: 'dio', bus: 'main', unit: 3, driver: 'waveshare-di-8ch', pollMs: 50 },
        ],
      },
    });
    const r = rig;
    const heads = () => r.sub.readings('head') as Row[];
    await waitFor(() => heads().length >= 1, 10_000);
    expect(Object.keys(heads()[0]!.values)).toEqual(expect.arrayContaining(['temperature', 'pm10', 'windSpeed', 'windLevel']));
    // a move smaller than the deadband stays local; the rules and the page still see it
    r.sim.setValues('head', { temperature: 20.4 });
    await waitFor(() => r.gw.apiState().latest.temperature?.v === 20.4, 5000);
    await sleep(800);
    expect(heads().filter((x) => x.values.temperature !== undefined).map((x) => x.values.temperature)).toEqual([20]);
    // a move of exactly the deadband goes out
    r.sim.setValues('head', { temperature: 20.5 });
    await waitFor(() => heads().some((x) => x.values.temperature === 20.5), 5000);
    // the heartbeat: the unchanged wind speed every 2 s (within a poll)
    await waitFor(() => heads().filter((x) => x.values.windSpeed !== undefined).length >= 4, 10_000);
    const beats = heads().filter((x) => x.values.windSpeed !== undefined).map((x) => Date.parse(x.ts));
    for (let i = 1; i < beats.length; i++) {
      expect(beats[i]! - beats[i - 1]!).toBeGreaterThanOrEqual(2000);
      expect(beats[i]! - beats[i - 1]!).toBeLessThan(2000 + 400);
    }
    // a relay switched: on the uplink from the relays' next poll (pollMs 200)
    const polledBefore = r.gw.rt.report.counters.polled;
    const res = r.gw.requestOutput('sprinkler', true, { durationS: 30, by: 'test' });
    expect(res.ok).toBe(true);
    await waitFor(() => r.sub.events('output_changed').some((e) => e.output === 'sprinkler' && e.state === 'on'), 5000);
    const on = r.sub.events('output_changed').find((e) => e.output === 'sprinkler' && e.state === 'on')!;
    await waitFor(() => (r.sub.readings('relays') as Row[]).some((x) => x.values.ch1 === 1), 5000);
    const seen = (r.sub.readings('relays') as Row[]).find((x) => x.values.ch1 === 1)!;
    expect(Date.parse(seen.ts) - Date.parse(on.ts as string)).toBeLessThanOrEqual(200 + 150);
    expect(seen.values).toEqual({ ch1: 1 }); // only what changed
    // inputs that did not change: their first poll only, out of dozens
    expect(r.gw.rt.report.counters.polled - polledBefore).toBeGreaterThan(20);
    expect((r.sub.readings('dio') as Row[]).length).toBe(1);
    // every event recorded reaches the broker
    const recorded: number[] = [];
    r.gw.on('event', (e: { seq: number }) => recorded.push(e.seq));
    r.gw.requestOutput('sprinkler', false, { by: 'test' });
    await waitFor(() => recorded.length >= 1, 5000);
    const all = await waitFor(() => {
      const got = new Set(r.sub.events().map((e) => e.seq as number));
      return recorded.every((s) => got.has(s)) ? got : undefined;
    }, 5000);
    expect(all.size).toBeGreaterThanOrEqual(recorded.length);
  });

  it('sparse on-change telemetry, yet the minute aggregate is computed from every poll', async () => {
    const cst = (s: string) => Date.parse(`${s}+08:00`);
    rig = await startInProcess('dust-event', {
      factor: 60,
      startMs: cst('2026-06-01T10:00:30'),
      moreSimDevices: [{ id: 'pm1', driver: 'generic-modbus', unit: 9, registers: [{ metric: 'pm1', address: 0 }], values: { pm1: { sine: { mean: 50, amplitude: 20, periodS: 7 } } } }],
      moreDevices: [{ id: 'pm1', bus: 'main', unit: 9, driver: 'generic-modbus', pollMs: 500, registers: [{ metric: 'pm1', address: 0 }], report: { strategy: 'onChange', deadband: 1000, heartbeatS: 3600 } }],
    });
    const r = rig;
    await waitFor(() => r.sub.on('aggregates').some((m) => m.payload.device === 'pm1' && m.payload.period === 'minute'), 30_000, 100);
    const agg = r.sub.on('aggregates').find((m) => m.payload.device === 'pm1' && m.payload.period === 'minute')!.payload as { metrics: { pm1: { mean: number; min: number; max: number; count: number } } };
    const sent = r.sub.readings('pm1') as Row[];
    expect(sent.length).toBe(1); // the first poll: nothing moved by 1000 since
    expect(agg.metrics.pm1.count).toBeGreaterThan(20); // every poll of the minute (500 ms of scenario time each)
    expect(agg.metrics.pm1.max - agg.metrics.pm1.min).toBeGreaterThan(20); // the sine, not the one value sent
    expect(Math.abs(agg.metrics.pm1.mean - 50)).toBeLessThan(10);
  });
});
