/** Shared by the benchmarks: the result row, free ports, a private mosquitto. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface Result {
  name: string;
  measured: string;
  baseline: string;
  ratio: number;
  target: string;
  pass: boolean;
}

export const quick = process.argv.includes('--quick');

/**
 * Run a baseline loop and ours alternately (after one warm-up of each) and return the median pair
 * by ratio: alternating and taking the median resists a noisy neighbour.
 */
export interface Alternating {
  /** the median pair (by the ratio mine/base) */
  base: number;
  mine: number;
  ratio: number;
  /** the lowest and highest ratio of the pairs */
  spread: [number, number];
  pairs: { base: number; mine: number }[];
}

/** `spread` as printed beside a ratio: "0.81–1.12 over 9 pairs". */
export const spreadText = (a: Alternating, d = 2) => `${a.spread[0].toFixed(d)}–${a.spread[1].toFixed(d)} over ${a.pairs.length} pairs`;

export async function medianOfAlternating(base: () => Promise<number>, mine: () => Promise<number>, rounds: number): Promise<Alternating> {
  // each trial starts from a collected heap (`npm run bench` runs node with --expose-gc): what an
  // earlier trial left behind is not collected on the next one's time
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const run = async (f: () => Promise<number>) => (gc(), f());
  await run(base);
  await run(mine);
  const pairs: { base: number; mine: number }[] = [];
  for (let k = 0; k < rounds; k++) pairs.push({ base: await run(base), mine: await run(mine) });
  pairs.sort((a, b) => a.mine / a.base - b.mine / b.base);
  const mid = pairs[Math.floor(pairs.length / 2)]!;
  const ratios = pairs.map((p) => p.mine / p.base);
  return { ...mid, ratio: mid.mine / mid.base, spread: [ratios[0]!, ratios[ratios.length - 1]!], pairs };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

export interface BenchBroker {
  url: string;
  stop(): Promise<void>;
  /** start it again on the same port (with `persistence`, its sessions come back) */
  start(): Promise<void>;
}

export async function startMosquitto(o: { persistence?: boolean } = {}): Promise<BenchBroker> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dustgate-bench-mq-'));
  const conf = path.join(dir, 'mosquitto.conf');
  // run as ourselves: started as root, mosquitto would switch to user mosquitto and could not write its persistence file here
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nuser ${os.userInfo().username}\npersistence ${o.persistence ? 'true' : 'false'}\npersistence_location ${dir}/\nmax_queued_messages 200000\nmax_inflight_messages 0\nlog_dest none\n`);
  let proc: ChildProcess;
  const start = async () => {
    try {
      proc = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    } catch {
      throw new Error('mosquitto is not installed: run `bash scripts/install-system-deps.sh`');
    }
    const spawnErr = new Promise<never>((_, rej) => proc.once('error', () => rej(new Error('mosquitto is not installed: run `bash scripts/install-system-deps.sh`'))));
    const ready = (async () => {
      for (let i = 0; i < 100; i++) {
        const ok = await new Promise<boolean>((r) => {
          const s = net.connect(port, '127.0.0.1');
          s.once('connect', () => (s.destroy(), r(true)));
          s.once('error', () => r(false));
        });
        if (ok) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('mosquitto did not start');
    })();
    await Promise.race([ready, spawnErr]);
  };
  await start();
  return {
    url: `mqtt://127.0.0.1:${port}`,
    start,
    async stop() {
      if (proc.exitCode !== null) return;
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    },
  };
}
