/**
 * P/state goes out when the state changes in anything but its time, temperature and wind mean
 * (docs/mqtt.md). The heartbeat used to build the whole state and stringify it, without those three,
 * about once a second to find that out; `StateView.stateKey` now builds a key field by field. The
 * oracle is the old way: a real rules engine driven through readings that cross the 4 °C floor, a
 * dust alarm's levels and the wind's Beaufort levels, under outputs, devices and the store changing
 * beside it, and at every step the new key must change exactly when the old one does.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../gateway/config/load.js';
import { ALERT_LEVELS } from '../../gateway/config/schema.js';
import { RulesEngine } from '../../gateway/rules/engine.js';
import { StateView, type ViewHost } from '../../gateway/state-view.js';

const T0 = Date.parse('2026-01-10T10:00:00+08:00');

function lcg(seed: number) {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function setup() {
  const c = resolveConfig({
    gateway: { id: 'state-key' },
    buses: [{ id: 'line1', type: 'tcp', host: '127.0.0.1', port: 1502 }],
    devices: [
      { id: 'head', bus: 'line1', unit: 1, driver: 'cwt-weather-station' },
      { id: 'relays', bus: 'line1', unit: 2, driver: 'waveshare-relay-8ch' },
    ],
    outputs: {
      sprinkler: { device: 'relays', channel: 1, kind: 'road' },
      sweepStopSignal: { device: 'relays', channel: 2 },
      cameraTrigger: { device: 'relays', channel: 3, pulseMs: 500 },
    },
    rules: { sweeping: { windAverageS: 10, resumeAfterS: 7 }, dustAlarm: { sprayS: 12, sprayRestS: 10, onWarn: ['spray', 'cameraTrigger'] } },
  }).config;
  const engine = new RulesEngine({ rules: c.rules, outputs: c.outputs, inputs: {}, sources: { temperature: 'head', windSpeed: 'head', pm10: 'head' }, timezone: 'Asia/Shanghai' }, T0);
  let t = T0;
  let storage: 'ok' | 'failing' = 'ok';
  const devices = new Map([
    ['head', { status: 'online' }],
    ['relays', { status: 'online' }],
  ]);
  const actual: Record<string, string> = { sprinkler: 'off', sweepStopSignal: 'off', cameraTrigger: 'unknown' };
  const host = {
    rt: { devices, outputs: { actual } },
    engine,
    clock: { mono: () => t },
    storage: { status: () => ({ state: storage }) },
    uplink: undefined,
    now: () => t,
    emit: () => true,
  } as unknown as ViewHost;
  return {
    view: new StateView(host),
    engine,
    devices,
    actual,
    at: (ms: number) => (t = ms),
    setStorage: (s: 'ok' | 'failing') => (storage = s),
  };
}

describe('the P/state key', () => {
  it('changes exactly when the state without its time, temperature and wind mean does', () => {
    const s = setup();
    const rnd = lcg(17);
    const oldKey = () => {
      const st = s.view.state();
      return JSON.stringify({ ...st, ts: undefined, sprinkling: { ...st.sprinkling, temperature: undefined }, sweeping: { ...st.sweeping, windMean: undefined } });
    };
    let prevOld = '';
    let prevNew = '';
    let changed = 0;
    let same = 0;
    const parts = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const t = T0 + i * 700;
      s.at(t);
      // a winter morning that warms through 4 °C and back, dust that rises into alarm and falls, wind in gusts
      const temperature = Math.round((3 + 3 * Math.sin(i / 40) + rnd()) * 10) / 10;
      const pm10 = Math.round(60 + 200 * Math.max(0, Math.sin(i / 25)) + 20 * rnd());
      const windSpeed = Math.round((i % 90 < 30 ? 6 + 4 * rnd() : 1 + rnd()) * 10) / 10;
      const values = { temperature, pm10, windSpeed };
      s.engine.ingest({ device: 'head', ts: t, values, flags: { temperature: 'N', pm10: 'N', windSpeed: 'N' } }, t);
      s.engine.evaluate(t);
      s.engine.drainEvents();
      // what the engine does not own: relays read back, devices dropping out, the store failing
      const r = rnd();
      if (r < 0.05) s.actual.sprinkler = s.actual.sprinkler === 'on' ? 'off' : 'on';
      else if (r < 0.08) s.actual.cameraTrigger = ['on', 'off', 'unknown'][Math.floor(rnd() * 3)]!;
      else if (r < 0.11) s.devices.get('relays')!.status = s.devices.get('relays')!.status === 'online' ? 'offline' : 'online';
      else if (r < 0.13) s.setStorage(rnd() < 0.5 ? 'failing' : 'ok');
      else if (r < 0.15) s.engine.setAlertLevel(ALERT_LEVELS[Math.floor(rnd() * ALERT_LEVELS.length)]!, t); // an operator's or the city's alert
      const o = oldKey();
      const n = s.view.stateKey(s.engine.snapshot(t));
      expect(n !== prevNew, `step ${i}: ${o}`).toBe(o !== prevOld);
      if (i > 0) (o !== prevOld ? changed++ : same++);
      // which parts of the state moved, to show the drive covers them
      if (prevOld) {
        const a = JSON.parse(prevOld), b = JSON.parse(o);
        for (const k of Object.keys(b)) {
          if (JSON.stringify(a[k]) === JSON.stringify(b[k])) continue;
          if (k === 'sprinkling' || k === 'sweeping') for (const f of Object.keys(b[k])) a[k][f] !== b[k][f] && parts.add(`${k}.${f}`);
          else parts.add(k);
        }
      }
      prevOld = o;
      prevNew = n;
    }
    expect(changed).toBeGreaterThan(20);
    expect(same).toBeGreaterThan(100);
    for (const p of ['sprinkling.allowed', 'sprinkling.reason', 'sweeping.allowed', 'sweeping.beaufort', 'alarms', 'alertLevel', 'outputs', 'devices', 'storage']) expect([...parts], p).toContain(p);
  });
});
