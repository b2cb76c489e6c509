/**
 * Benchmarks, each a ratio against a baseline measured in the same run:
 *  (a) RTU line efficiency: 8 simulated devices at 9600 baud with wire-time emulation over a real pty;
 *      achieved reads/s ÷ the theoretical wire maximum for those frames (target ≥ 0.85).
 *  (b) Modbus TCP on loopback: dustgate's read rate ÷ a bare modbus-serial client loop doing the
 *      same reads against the same server, median of alternating pairs (target ≥ 0.95).
 *  (c) drain: buffered readings delivered to mosquitto at QoS 1 by dustgate's uplink ÷ a bare mqtt.js
 *      loop publishing the same readings one per message (target ≥ 3× faster), and like for like ÷ a
 *      bare loop publishing the same 500-reading messages (target ≥ 0.8).
 *  (d) buffer writes: readings written through the store ÷ bare better-sqlite3 inserts of the same rows (≥ 0.5).
 *  (e) 50 simulated devices at 1 Hz: the gateway process's CPU share of one core (≤ 5 %) and peak RSS (≤ 120 MB),
 *      and both ÷ a bare poll→SQLite→MQTT loop (bench/bare-loop.mjs) in alternating pairs (≤ 1.2 each).
 *  (f) Firmata: an Arduino relay switched and confirmed through dustgate ÷ a bare firmata.js loop (≥ 0.8).
 *  (g) CLI start-up: `dustgate --version` and `dustgate read` against bare `node -e 0` (bench/cli.ts).
 *  (h) SD card wear: bytes written to disk per hour on the construction-site example, broker up and down (bench/disk.ts).
 *  (i) peak RSS of `dustgate run` under arm64 emulation on the construction-site example, a figure (bench/arm64.ts).
 *  (j) uplink bytes a day of the construction-site example, counted on the wire: every poll sent (today's
 *      behaviour) against the default report strategies and the example as shipped (≤ 0.2), every event,
 *      relay and input change and minute aggregate delivered (bench/uplink-bytes.ts).
 *  (k) a fleet of 200 gateways with ten minutes of backlog each after a broker restart: time to drain,
 *      peak reconnects a second, every seq complete (bench/fleet.ts).
 * Writes bench/results.json and prints a table. `--quick` runs shorter (CI).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ModbusRTU from 'modbus-serial';
import { Bus } from '../drivers/bus.js';
import { DeviceClient } from '../drivers/device.js';
import { getDefinition } from '../drivers/devices/index.js';
import { responsePduLength } from '../drivers/modbus/pdu.js';
import { planReads } from '../drivers/devices/registers.js';
import { wireTimeMs } from '../drivers/line.js';
import { parseScenario } from '../simulator/scenario.js';
import { Simulator } from '../simulator/simulator.js';
import { freePort, medianOfAlternating, quick, spreadText, type Result } from './common.js';
import { bufferWrites, drain, gatewayLoad } from './gateway.js';
import { firmataSwitching } from './firmata.js';
import { cliStartup } from './cli.js';
import { diskWrites } from './disk.js';
import { arm64Rss } from './arm64.js';
import { uplinkBytes } from './uplink-bytes.js';
import { fleetRecovery } from './fleet.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const LINE = ['cwt-weather-station', 'renke-wind-speed', 'renke-wind-direction', 'xy-md02', 'noise-transmitter', 'dust-transmitter', 'waveshare-relay-8ch', 'waveshare-di-8ch'];

/** Wire time of one full read of `driver`: every request + reply, each followed by 3.5 characters of silence. */
function theoreticalMs(driver: string, baud: number): number {
  const def = getDefinition(driver);
  if (def.kind !== 'modbus') return 0;
  const reqs = [
    ...planReads(def.registers).map((b) => ({ fn: b.fn, address: b.address, count: b.count })),
    ...[def.coils, def.discreteInputs].filter((b) => b).map((b) => ({ fn: b!.fn, address: b!.address, count: b!.count })),
  ];
  return reqs.reduce((sum, r) => sum + wireTimeMs(8 + 1 + responsePduLength(r) + 2 + 7, baud), 0);
}

async function rtuEfficiency(): Promise<Result> {
  const baud = 9600;
  const sim = new Simulator(
    parseScenario({ devices: LINE.map((driver, i) => ({ id: `d${i + 1}`, driver, unit: i + 1, baudRate: baud, values: {} })) }),
  );
  const pty = `/tmp/dustgate-bench-${process.pid}`;
  await sim.servePty(pty);
  const bus = new Bus({ id: 'bench', type: 'rtu', path: pty, baudRate: baud, timeoutMs: 500 });
  await bus.start();
  const clients = LINE.map((driver, i) => new DeviceClient(bus, getDefinition(driver), { id: `d${i + 1}`, unit: i + 1 }));
  for (const c of clients) await c.read(); // warm up
  const seconds = quick ? 4 : 20;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let reads = 0;
  while (performance.now() < end) {
    for (const c of clients) {
      await c.read();
      reads++;
    }
  }
  const elapsed = (performance.now() - t0) / 1000;
  await bus.stop();
  await sim.stop();
  const roundMs = LINE.reduce((s, d) => s + theoreticalMs(d, baud), 0);
  const maxRate = (LINE.length * 1000) / roundMs;
  const rate = reads / elapsed;
  const ratio = rate / maxRate;
  return {
    name: 'RTU line efficiency (8 devices, 9600 baud, pty)',
    measured: `${rate.toFixed(2)} reads/s`,
    baseline: `${maxRate.toFixed(2)} reads/s wire max`,
    ratio,
    target: '≥ 0.85',
    pass: ratio >= 0.85,
  };
}

async function tcpRate(): Promise<Result> {
  const port = await freePort();
  // The server runs in its own process, so neither client competes with it for the event loop.
  const server = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, '../gateway/cli/main.ts'), 'sim', '--scenario', path.join(HERE, '../seeds/scenarios/demo.yaml'), '--tcp', `127.0.0.1:${port}`, '--control', '127.0.0.1:0'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 200; i++) {
      const ok = await new Promise<boolean>((r) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
        s.on('error', () => r(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const n = quick ? 8000 : 20000;

    const bare = async () => {
      const client = new ModbusRTU();
      await client.connectTCP('127.0.0.1', { port });
      client.setID(1);
      client.setTimeout(1000);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await client.readHoldingRegisters(0x01f4, 10);
      const rate = n / ((performance.now() - t0) / 1000);
      await new Promise<void>((r) => client.close(() => r()));
      return rate;
    };
    const ours = async () => {
      const bus = new Bus({ id: 'tcp', type: 'tcp', host: '127.0.0.1', port, timeoutMs: 1000 });
      await bus.start();
      const c = new DeviceClient(bus, getDefinition('cwt-weather-station'), { id: 'head', unit: 1 });
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await c.read();
      const rate = n / ((performance.now() - t0) / 1000);
      await bus.stop();
      return rate;
    };
    const m = await medianOfAlternating(bare, ours, quick ? 9 : 15);
    return {
      name: 'Modbus TCP loopback read rate (10 registers)',
      measured: `${m.mine.toFixed(0)} reads/s (ratio ${spreadText(m)})`,
      baseline: `${m.base.toFixed(0)} reads/s modbus-serial`,
      ratio: m.ratio,
      pass: m.ratio >= 0.95,
      target: '≥ 0.95 (median pair)',
    };
  } finally {
    server.kill('SIGTERM');
  }
}

// every row's temporary files (databases, brokers, bundles) under one directory, removed at the end
const TMP = mkdtempSync(path.join(os.tmpdir(), 'dustgate-bench-run-'));
process.env.TMPDIR = TMP;
const results: Result[] = [];
/** Run one section and say how long it took (stderr: the table stays the only stdout). */
async function section(name: string, f: () => Promise<Result | Result[]>): Promise<void> {
  const t0 = performance.now();
  const r = await f();
  results.push(...(Array.isArray(r) ? r : [r]));
  console.error(`bench: ${name} done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}
try {
  await section('RTU line efficiency', rtuEfficiency);
  await section('Modbus TCP rate', tcpRate);
  await section('drain', drain);
  await section('buffer writes', bufferWrites);
  await section('50 devices at 1 Hz', () => gatewayLoad());
  await section('Firmata switching', firmataSwitching);
  await section('CLI start-up', cliStartup);
  await section('SD card writes', diskWrites);
  await section('arm64 RSS', arm64Rss);
  await section('uplink bytes', uplinkBytes);
  await section('fleet recovery', fleetRecovery);
} finally {
  try {
    rmSync(TMP, { recursive: true, force: true, maxRetries: 3 });
  } catch (e) {
    console.error(`bench temp files: ${TMP} not fully removed: ${(e as Error).message}`);
  }
}

const file = path.join(HERE, 'results.json');
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), quick, node: process.version, results }, null, 2) + '\n');

const cols = ['benchmark', 'measured', 'baseline', 'ratio', 'target', 'ok'];
const rows = results.map((r) => [r.name, r.measured, r.baseline, r.ratio.toFixed(3), r.target, r.pass ? 'yes' : 'NO']);
const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(line(cols));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
console.log(`\nwritten to ${path.relative(process.cwd(), file)}${quick ? ' (quick run)' : ''}`);
process.exit(0);
