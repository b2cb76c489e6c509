/**
 * SD card wear: bytes `dustgate run` writes to the disk per hour (`write_bytes` of /proc/PID/io: what
 * reaches the block layer: the database, its WAL and checkpoints; the log goes to stdout, i.e. the
 * journal), on the construction-site example (seeds/sites/construction-zhengzhou.yaml: weather head,
 * relay module, input module at 200 ms) over the simulator, with the broker up and with it down,
 * scaled from a shorter run. Target with the broker up: under 50 MB/hour.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadScenario } from '../simulator/scenario.js';
import { Simulator } from '../simulator/simulator.js';
import { freePort, quick, startMosquitto, type Result } from './common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..');

const writeBytes = (pid: number) => Number(/^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);

/** The construction site, its RS-485 line served by the simulator over Modbus TCP (the PMS5003 on the UART has no TCP twin: left out). */
export function siteOn(port: number, mqttUrl: string, dir: string): string {
  const c = parse(readFileSync(path.join(ROOT, 'seeds/sites/construction-zhengzhou.yaml'), 'utf8')) as Record<string, any>;
  c.buses = [{ id: 'line1', type: 'tcp', host: '127.0.0.1', port, timeoutMs: 500 }];
  c.devices = c.devices.filter((d: { bus: string }) => d.bus === 'line1');
  c.sources = Object.fromEntries(Object.entries(c.sources as Record<string, string>).filter(([, d]) => c.devices.some((x: { id: string }) => x.id === d)));
  c.storage = { ...c.storage, path: path.join(dir, 'buffer.db') };
  c.mqtt = { url: mqttUrl, reconnectMaxS: 5 };
  c.http = { port: 0 };
  const file = path.join(dir, 'site.json');
  writeFileSync(file, JSON.stringify(c));
  return file;
}

async function bytesPerHour(brokerUp: boolean, seconds: number): Promise<number> {
  const sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios/demo.yaml')), { wireTime: false });
  const port = await freePort();
  await sim.serveTcp('127.0.0.1', port);
  const mq = brokerUp ? await startMosquitto() : undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dustgate-bench-disk-'));
  const cfg = siteOn(port, mq?.url ?? `mqtt://127.0.0.1:${await freePort()}`, dir);
  const dist = path.join(ROOT, 'dist/cli.js');
  const [cmd, args] = existsSync(dist) ? [dist, []] : [process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts')]];
  const gw = spawn(cmd, [...args, 'run', '--config', cfg], { stdio: 'ignore', env: { ...process.env, DUSTGATE_LOG_LEVEL: 'warn' } });
  try {
    await new Promise((r) => setTimeout(r, 5000)); // start-up writes the schema and the first version
    const b0 = writeBytes(gw.pid!);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const bytes = writeBytes(gw.pid!) - b0;
    return (bytes / ((performance.now() - t0) / 1000)) * 3600;
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
    await sim.stop();
    await mq?.stop();
  }
}

export async function diskWrites(): Promise<Result[]> {
  const seconds = quick ? 20 : 120;
  const up = await bytesPerHour(true, seconds);
  const down = await bytesPerHour(false, seconds);
  const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB/h`;
  return [
    { name: `disk writes, construction site, broker up (${seconds} s)`, measured: mb(up), baseline: 'target 50 MB/h', ratio: up / (50 * 1048576), target: '≤ 1 (of target)', pass: up <= 50 * 1048576 },
    { name: `disk writes, construction site, broker down (${seconds} s)`, measured: mb(down), baseline: 'figure only', ratio: down / (50 * 1048576), target: 'figure', pass: true },
  ];
}
