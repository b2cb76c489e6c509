/**
 * Peak RSS of `dustgate run` under arm64 emulation (qemu-user, Node 20 for arm64) on the
 * construction-site example over the simulator: a figure, no target (qemu's own translation cache
 * is in it; a real Pi runs without). The arm64 install comes from scripts/build-install.sh (its
 * native builds are cached per lockfile).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenario } from '../simulator/scenario.js';
import { Simulator } from '../simulator/simulator.js';
import { freePort, quick, startMosquitto, type Result } from './common.js';
import { siteOn } from './disk.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function arm64Rss(): Promise<Result> {
  const name = 'dustgate run under arm64 emulation, construction site: peak RSS';
  if (!existsSync('/usr/bin/qemu-aarch64-static')) throw new Error('qemu-aarch64-static is missing: run `bash scripts/install-system-deps.sh`');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dustgate-bench-arm64-'));
  execFileSync('bash', [path.join(ROOT, 'scripts/build-install.sh'), 'arm64', path.join(dir, 'app')], { stdio: 'ignore' });
  const node = execFileSync('bash', [path.join(ROOT, 'scripts/node-arm64.sh')], { encoding: 'utf8' }).trim();
  const sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios/demo.yaml')), { wireTime: false });
  const port = await freePort();
  await sim.serveTcp('127.0.0.1', port);
  const mq = await startMosquitto();
  const cfg = siteOn(port, mq.url, dir);
  const gw = spawn('/usr/bin/qemu-aarch64-static', ['-L', '/usr/aarch64-linux-gnu', path.join(node, 'bin/node'), '--max-semi-space-size=4', path.join(dir, 'app/dist/cli.js'), 'run', '--config', cfg], { stdio: 'ignore', env: { ...process.env, DUSTGATE_LOG_LEVEL: 'warn' } });
  try {
    await new Promise((r) => setTimeout(r, (quick ? 20 : 60) * 1000));
    const kb = Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${gw.pid}/status`, 'utf8'))?.[1] ?? 0);
    return { name, measured: `${(kb / 1024).toFixed(1)} MB`, baseline: 'figure only (qemu included)', ratio: kb / 1024 / 120, target: 'figure', pass: true };
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
    await sim.stop();
    await mq.stop();
  }
}
