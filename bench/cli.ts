/**
 * CLI start-up: `dustgate --version` and `dustgate read` (one device of the simulator over Modbus
 * TCP) against bare `node -e 0` with the binary's Node flags, in the same run: wall time (median of
 * alternating runs) and peak RSS (GNU time's maximum resident set size).
 * Targets: --version ≤ 1.5× node's own start, read ≤ 2.5×, peak RSS of --version ≤ 1.3×.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScenario } from '../simulator/scenario.js';
import { Simulator } from '../simulator/simulator.js';
import { freePort, quick, type Result } from './common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(HERE, '../dist/cli.js');
const TIME = '/usr/bin/time';

type Cmd = [string, string[]];

/** One run under GNU time: wall ms and peak RSS in KB (async: the simulator answers from this process). */
function once([cmd, args]: Cmd): Promise<{ ms: number; kb: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(TIME, ['-f', '%M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.trim().split('\n').slice(-2).join(' ')}`));
      resolve({ ms, kb: Number(err.trim().split('\n').at(-1)) });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Baseline and ours alternately (after a warm-up of each); the median of each. */
async function compare(base: Cmd, mine: Cmd, rounds: number) {
  await once(base);
  await once(mine);
  const b: { ms: number; kb: number }[] = [];
  const m: { ms: number; kb: number }[] = [];
  for (let i = 0; i < rounds; i++) {
    b.push(await once(base));
    m.push(await once(mine));
  }
  return { baseMs: median(b.map((x) => x.ms)), mineMs: median(m.map((x) => x.ms)), baseKb: median(b.map((x) => x.kb)), mineKb: median(m.map((x) => x.kb)) };
}

const row = (name: string, measured: string, baseline: string, ratio: number, max: number): Result => ({ name, measured, baseline, ratio, target: `≤ ${max}`, pass: ratio <= max });

export async function cliStartup(): Promise<Result[]> {
  if (!existsSync(TIME)) throw new Error(`${TIME} is missing: run \`bash scripts/install-system-deps.sh\` (Debian package time)`);
  if (!existsSync(DIST)) execFileSync('npx', ['tsup'], { cwd: path.join(HERE, '..'), stdio: 'ignore' });
  const rounds = quick ? 9 : 31;
  const node: Cmd = [process.execPath, ['--max-semi-space-size=4', '-e', '0']];
  const version = await compare(node, [DIST, ['--version']], rounds);
  const sim = new Simulator(parseScenario({ devices: [{ id: 'th', driver: 'xy-md02', unit: 1, values: { temperature: 21.5, humidity: 40 } }] }), { wireTime: false });
  const port = await freePort();
  await sim.serveTcp('127.0.0.1', port);
  let read;
  try {
    read = await compare(node, [DIST, ['read', '--host', `127.0.0.1:${port}`, '--driver', 'xy-md02', '--unit', '1']], rounds);
  } finally {
    await sim.stop();
  }
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;
  return [
    row('CLI start-up: dustgate --version, wall', ms(version.mineMs), `${ms(version.baseMs)} node -e 0`, version.mineMs / version.baseMs, 1.5),
    row('CLI start-up: dustgate --version, peak RSS', mb(version.mineKb), `${mb(version.baseKb)} node -e 0`, version.mineKb / version.baseKb, 1.3),
    row('CLI start-up: dustgate read (TCP, xy-md02), wall', ms(read.mineMs), `${ms(read.baseMs)} node -e 0`, read.mineMs / read.baseMs, 2.5),
  ];
}
