/** Scenario engine, control API, seeded scenarios and wire-time emulation. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { evaluate, loadScenario, parseScenario, ScenarioError } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { wireTimeMs } from '../../drivers/line.js';
import { startRig, type Rig } from '../helpers/rig.js';
import { freePort } from '../helpers/system.js';

describe('scenario values', () => {
  it('ramps, steps and sines at given seconds', () => {
    expect(evaluate({ ramp: { from: 2, to: 6, startS: 100, endS: 300 } }, 50, 0, 1, 'k')).toBe(2);
    expect(evaluate({ ramp: { from: 2, to: 6, startS: 100, endS: 300 } }, 200, 0, 1, 'k')).toBe(4);
    expect(evaluate({ ramp: { from: 2, to: 6, startS: 100, endS: 300 } }, 400, 0, 1, 'k')).toBe(6);
    const steps = { steps: [[0, 1], [60, 3.9], [120, 4.0]] as [number, number][] };
    expect([0, 59.9, 60, 119, 120, 999].map((t) => evaluate(steps, t, 0, 1, 'k'))).toEqual([1, 1, 3.9, 3.9, 4.0, 4.0]);
    expect(evaluate({ sine: { mean: 10, amplitude: 5, periodS: 400, phaseS: 0 } }, 100, 0, 1, 'k')).toBeCloseTo(15, 9);
  });
  it('daily curves follow the wall clock', () => {
    const at = (h: number) => new Date(2026, 0, 15, h, 0, 0).getTime();
    const spec = { daily: { min: 0, max: 10, peakHour: 14 } };
    expect(evaluate(spec, 0, at(14), 1, 'k')).toBeCloseTo(10, 9);
    expect(evaluate(spec, 0, at(2), 1, 'k')).toBeCloseTo(0, 9);
  });
  it('seeded noise repeats for the same seed and differs for another', () => {
    const spec = { const: 100, noise: { sd: 5 } };
    const a = [1, 2, 3, 4, 5].map((t) => evaluate(spec, t, 0, 42, 'head.pm10'));
    const b = [1, 2, 3, 4, 5].map((t) => evaluate(spec, t, 0, 42, 'head.pm10'));
    const c = [1, 2, 3, 4, 5].map((t) => evaluate(spec, t, 0, 43, 'head.pm10'));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(new Set(a).size).toBe(5);
    expect(a.every((v) => Math.abs(v - 100) < 30)).toBe(true);
  });
  it('rejects a bad scenario naming the path', () => {
    expect(() => parseScenario({ devices: [{ id: 'x', driver: 'nope' }] })).toThrow(ScenarioError);
    expect(() => parseScenario({ devices: [{ id: 'x', driver: 'xy-md02', unit: 300 }] })).toThrow(/devices\[0\]\.unit/);
    expect(() => parseScenario({ devices: [{ id: 'x', driver: 'xy-md02' }], faults: [{ device: 'x', fault: 'melt' }] })).toThrow(/faults\[0\]\.fault/);
    expect(() => parseScenario({ devices: [{ id: 'x', driver: 'xy-md02' }], faults: [{ device: 'y', fault: 'timeout' }] })).toThrow(/unknown device "y"/);
  });
  it('follows a fake clock, and fault windows open and close with it', () => {
    let now = 1_000_000;
    const sim = new Simulator(
      parseScenario({
        devices: [{ id: 'th', driver: 'xy-md02', values: { temperature: { steps: [[0, 2], [60, 4.5]] } } }],
        faults: [{ device: 'th', fault: 'timeout', fromS: 10, toS: 20 }],
      }),
      { nowMs: () => now },
    );
    const d = sim.device('th')!;
    expect(sim.describeDevice(d).values.temperature).toBe(2);
    now += 15_000;
    expect(sim.describeDevice(d).faults).toEqual(['timeout']);
    now += 50_000;
    expect(sim.describeDevice(d).faults).toEqual([]);
    expect(sim.describeDevice(d).values.temperature).toBe(4.5);
  });
});

describe('seeded scenarios', () => {
  const dir = path.resolve(__dirname, '../../seeds/scenarios');
  it('has the five named scenarios, and each loads', () => {
    const names = readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => f.replace('.yaml', ''));
    expect(names).toEqual(expect.arrayContaining(['demo', 'frost-morning', 'windy-afternoon', 'dust-event', 'flaky-line']));
    for (const n of names) expect(loadScenario(path.join(dir, `${n}.yaml`)).devices.length).toBeGreaterThan(0);
  });
  it('frost-morning crosses 4 °C while PM10 is high', () => {
    const s = loadScenario(path.join(dir, 'frost-morning.yaml'));
    let now = 0;
    const sim = new Simulator(s, { nowMs: () => now });
    const head = sim.device('head')!;
    const temps: number[] = [];
    for (let t = 0; t <= 600; t += 30) {
      now = t * 1000;
      temps.push(head.value('temperature', t, now));
      expect(head.value('pm10', t, now)).toBeGreaterThan(150);
    }
    expect(Math.min(...temps)).toBeLessThan(4);
    expect(Math.max(...temps)).toBeGreaterThanOrEqual(4);
  });
});

describe('control API', () => {
  let sim: Simulator | undefined;
  afterEach(async () => sim?.stop());
  it('reads and sets values, coils and faults at run time', async () => {
    sim = new Simulator(parseScenario({ devices: [{ id: 'head', driver: 'cwt-weather-station', values: { temperature: 10 } }, { id: 'relays', driver: 'waveshare-relay-8ch', unit: 2 }] }));
    const port = await freePort();
    await sim.startControl('127.0.0.1', port);
    const base = `http://127.0.0.1:${port}`;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const json = async (r: Response): Promise<any> => r.json();
    const list = await json(await fetch(`${base}/devices`));
    expect(list.map((d: { id: string }) => d.id)).toEqual(['head', 'relays']);
    let r = await fetch(`${base}/devices/head/values`, { method: 'PUT', body: JSON.stringify({ temperature: 3.9 }) });
    expect(r.status).toBe(200);
    expect((await json(await fetch(`${base}/devices/head`))).values.temperature).toBe(3.9);
    r = await fetch(`${base}/devices/relays/values`, { method: 'PUT', body: JSON.stringify({ ch2: 1 }) });
    expect((await json(r)).values.ch2).toBe(1);
    r = await fetch(`${base}/devices/head/faults`, { method: 'PUT', body: JSON.stringify({ faults: ['crc-error', 'slow:200'] }) });
    expect((await json(r)).faults).toEqual(['crc-error', 'slow:200']);
    r = await fetch(`${base}/devices/head/faults`, { method: 'PUT', body: JSON.stringify({ faults: ['melt'] }) });
    expect(r.status).toBe(400);
    expect((await json(r)).error).toMatch(/unknown fault/);
    r = await fetch(`${base}/devices/head/values`, { method: 'PUT', body: JSON.stringify({ nosuch: 1 }) });
    expect(r.status).toBe(400);
    expect((await fetch(`${base}/devices/ghost`)).status).toBe(404);
  });
});

describe('wire-time emulation', () => {
  let rig: Rig | undefined;
  afterEach(async () => rig?.stop());
  it('a read at 9600 baud takes the wire time of request, reply and silences', async () => {
    rig = await startRig({ devices: [{ id: 'head', driver: 'cwt-weather-station', baudRate: 9600, values: { pm10: 99 } }] }, 'mock');
    const c = rig.client('head');
    await c.read();
    const t0 = performance.now();
    const n = 10;
    for (let i = 0; i < n; i++) await c.read();
    const per = (performance.now() - t0) / n;
    // request 8 bytes, reply 3 + 20 + 2 = 25 bytes, 3.5 characters of silence after each frame
    const wire = wireTimeMs(8 + 25 + 7, 9600);
    expect(per).toBeGreaterThanOrEqual(wire - 1);
    expect(per).toBeLessThan(wire * 1.5);
  });
});
