/**
 * Uplink bytes per day (issue: cellular data costs money): the construction-site example over the
 * simulator, its MQTT traffic counted on the wire by a TCP proxy in front of mosquitto (payload and
 * protocol overhead, both directions, as a SIM is billed), scaled to a day from a shorter run in
 * scenario time (a scaled clock). Three runs, at once: today's behaviour (every poll of every device
 * sent: `report: { strategy: every }`), the defaults (relays and inputs on change with a 300 s
 * heartbeat) and the example as shipped (its head as 10 s means). Target: the example ≤ 1/5 of
 * every-poll, with every event, every relay and input change and the same minute aggregates
 * delivered (checked, else the row fails).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { parse } from 'yaml';
import { resolveConfig } from '../gateway/config/load.js';
import { Gateway } from '../gateway/gateway.js';
import { loadScenario } from '../simulator/scenario.js';
import { Simulator } from '../simulator/simulator.js';
import { freePort, quick, startMosquitto, type Result } from './common.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
/** real time: the poller keeps its cadence in real milliseconds */
const FACTOR = 1;

/** A TCP proxy that counts the bytes it carries (both directions). */
async function countingProxy(target: number): Promise<{ port: number; bytes: () => number; stop(): Promise<void> }> {
  let bytes = 0;
  const socks = new Set<net.Socket>();
  const server = net.createServer((a) => {
    const b = net.connect(target, '127.0.0.1');
    for (const s of [a, b]) {
      socks.add(s);
      s.on('error', () => undefined);
      s.on('close', () => socks.delete(s));
    }
    a.on('data', (d) => (bytes += d.length));
    b.on('data', (d) => (bytes += d.length));
    a.pipe(b).pipe(a);
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return {
    port,
    bytes: () => bytes,
    stop: async () => {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Run {
  bytesPerDay: number;
  /** checks of what was delivered */
  events: { recorded: number; received: number };
  inputChanges: { made: number; received: number };
  relayChanges: { polled: number; received: number };
  minuteAggregates: number;
}

/** Relay or input transitions in a list of (channel values) in order. */
function transitions(rows: Record<string, number>[]): number {
  const last: Record<string, number> = {};
  let n = 0;
  for (const v of rows)
    for (const [k, x] of Object.entries(v)) {
      if (!/^ch\d+$/.test(k)) continue;
      if (k in last && last[k] !== x) n++;
      last[k] = x;
    }
  return n;
}

type Mode = 'every' | 'defaults' | 'shipped';

async function run(mode: Mode, scenarioS: number): Promise<Run> {
  const start = Date.parse('2026-06-01T09:59:30+08:00'); // working hours: dust alarms, sprays, camera pulses
  let real0: number | undefined;
  const now = () => (real0 === undefined ? start : start + (Date.now() - real0) * FACTOR);
  const sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios/demo.yaml')), { nowMs: now, wireTime: false });
  const simPort = await freePort();
  await sim.serveTcp('127.0.0.1', simPort);
  const mq = await startMosquitto();
  const proxy = await countingProxy(Number(new URL(mq.url).port));
  const sub = await mqtt.connectAsync(mq.url, { clientId: `bench-sub-${mode}` });
  const got = { events: new Set<number>(), dio: [] as Record<string, number>[], relays: [] as Record<string, number>[], minutes: 0 };
  sub.on('message', (topic, payload) => {
    const m = JSON.parse(payload.toString());
    if (topic.endsWith('/events')) for (const e of m.events) got.events.add(e.seq);
    else if (topic.endsWith('/telemetry')) for (const r of m.readings) (r.device === 'dio' ? got.dio : r.device === 'relays' ? got.relays : []).push(r.values);
    else if (topic.endsWith('/aggregates') && m.period === 'minute') got.minutes++;
  });
  await sub.subscribeAsync('dustgate/#', { qos: 1 });
  const c = parse(readFileSync(path.join(ROOT, 'seeds/sites/construction-zhengzhou.yaml'), 'utf8')) as Record<string, any>;
  c.buses = [{ id: 'line1', type: 'tcp', host: '127.0.0.1', port: simPort, timeoutMs: 500 }];
  // every: today's behaviour; defaults: no report settings at all; shipped: the example as written
  const report = (d: Record<string, unknown>) => (mode === 'every' ? { ...d, report: { strategy: 'every' } } : mode === 'defaults' ? { ...d, report: undefined } : d);
  c.devices = c.devices.filter((d: { bus: string }) => d.bus === 'line1').map(report);
  c.sources = Object.fromEntries(Object.entries(c.sources as Record<string, string>).filter(([, d]) => c.devices.some((x: { id: string }) => x.id === d)));
  c.storage = { ...c.storage, path: path.join(mkdtempSync(path.join(os.tmpdir(), 'dustgate-bench-bytes-')), 'buffer.db') };
  c.mqtt = { url: `mqtt://127.0.0.1:${proxy.port}` };
  c.http = { port: 0 };
  c.hj212 = { enabled: false };
  sim.setValues('head', { temperature: 15 }); // warm: the sprinklers may run whatever the hour of the run
  const gw = new Gateway({ loaded: resolveConfig(c), now, mono: now, logger: pino({ level: 'silent' }), tickMs: 50 });
  const recorded: number[] = [];
  gw.on('event', (e: { seq: number }) => recorded.push(e.seq));
  const polledRelays: Record<string, number>[] = [];
  await gw.start();
  gw.rt.poller.on('reading', (r: { device: string; values: Record<string, number> }) => r.device === 'relays' && polledRelays.push(r.values));
  await new Promise<void>((r) => (gw.uplink?.connected ? r() : gw.uplink!.once('connect', () => r())));
  const b0 = proxy.bytes();
  real0 = Date.now();
  // a person walks past the gate camera every 10 s (the input held 5 s), and the operator switches the
  // greenbelt sprinkler on and off every 15 s
  let made = 0;
  const gate = setInterval(() => {
    sim.setValues('dio', { ch1: made % 2 === 0 ? 1 : 0 });
    made++;
  }, 5000 / FACTOR);
  let on = false;
  const spray = setInterval(() => {
    gw.requestOutput('greenbelt', (on = !on), { by: 'bench' }); // off → on waits out minOffS (60 s)
  }, 15_000 / FACTOR);
  await new Promise((r) => setTimeout(r, (scenarioS * 1000) / FACTOR));
  clearInterval(gate);
  clearInterval(spray);
  const elapsedScenarioS = ((Date.now() - real0) * FACTOR) / 1000;
  const bytes = proxy.bytes() - b0;
  await new Promise((r) => setTimeout(r, 1500)); // what is in flight arrives
  await gw.stop();
  await sub.endAsync();
  await proxy.stop();
  await mq.stop();
  await sim.stop();
  return {
    bytesPerDay: (bytes / elapsedScenarioS) * 86_400,
    events: { recorded: recorded.length, received: recorded.filter((s) => got.events.has(s)).length },
    inputChanges: { made, received: transitions(got.dio) },
    relayChanges: { polled: transitions(polledRelays), received: transitions(got.relays) },
    minuteAggregates: got.minutes,
  };
}

export async function uplinkBytes(): Promise<Result[]> {
  const scenarioS = Number(process.env.BENCH_S) || (quick ? 75 : 300);
  // the three runs at once (each its own simulator, broker, proxy and gateway; bytes, not CPU, are
  // counted): one run's real time instead of three
  const [every, defaults, shipped] = await Promise.all([run('every', scenarioS), run('defaults', scenarioS), run('shipped', scenarioS)]);
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB/day`;
  const rows: Result[] = [{ name: `uplink bytes/day, construction site, every poll sent (today's behaviour; ${scenarioS} s)`, measured: mb(every.bytesPerDay), baseline: 'figure', ratio: 1, target: 'figure', pass: true }];
  for (const [r, what, limit] of [
    [defaults, 'default strategies (relays, inputs on change; sensors every poll)', undefined],
    [shipped, 'the example as shipped (+ head as 10 s means)', 0.2],
  ] as const) {
    const ratio = r.bytesPerDay / every.bytesPerDay;
    const complete =
      r.events.received === r.events.recorded &&
      r.inputChanges.received >= r.inputChanges.made - 1 &&
      r.relayChanges.received === r.relayChanges.polled &&
      r.relayChanges.polled > 0 &&
      r.minuteAggregates === every.minuteAggregates &&
      r.minuteAggregates > 0;
    const detail = `events ${r.events.received}/${r.events.recorded}, input changes ${r.inputChanges.received}/${r.inputChanges.made}, relay changes ${r.relayChanges.received}/${r.relayChanges.polled}, minute aggregates ${r.minuteAggregates}/${every.minuteAggregates}`;
    rows.push({
      name: `uplink bytes/day, ${what}: ${detail}`,
      measured: mb(r.bytesPerDay),
      baseline: `${mb(every.bytesPerDay)} every poll`,
      ratio,
      target: limit === undefined ? 'figure, all delivered' : `≤ ${limit}, all delivered`,
      pass: complete && (limit === undefined || ratio <= limit),
    });
  }
  return rows;
}

// alone: npx tsx bench/uplink-bytes.ts [--quick] (by the script's name: in the bench's bundle this module is not the entry)
if (process.argv[1]?.endsWith(`${path.sep}uplink-bytes.ts`)) console.log(await uplinkBytes());
