/** Gateway benchmarks: the drain to a real broker, buffer writes, and the load of 50 devices. */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { resolveConfig } from '../gateway/config/load.js';
import { Store, withSeq } from '../gateway/store.js';
import { MqttUplink } from '../gateway/uplink/mqtt.js';
import { parseScenario } from '../simulator/scenario.js';
import { Simulator } from '../simulator/simulator.js';
import { freePort, medianOfAlternating, quick, spreadText, startMosquitto, type Result } from './common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const tmp = (tag: string) => mkdtempSync(path.join(os.tmpdir(), `dustgate-bench-${tag}-`));

function readingBodies(n: number): string[] {
  const out: string[] = [];
  const t0 = Date.parse('2026-06-01T02:00:00Z');
  for (let i = 0; i < n; i++) {
    const values = { windSpeed: 2.1 + (i % 7) / 10, windDirection: 135, humidity: 40.5, temperature: 18.2, noise: 55.3, pm25: 40 + (i % 13), pm10: 80 + (i % 17), pressure: 100.8 };
    const flags = Object.fromEntries(Object.keys(values).map((k) => [k, 'N']));
    out.push(JSON.stringify({ ts: new Date(t0 + i * 1000).toISOString(), device: 'head', values, flags }));
  }
  return out;
}

/** Publish every message at QoS 1, `inFlight` at a time, until each is acknowledged. */
function publishAll(client: mqtt.MqttClient, messages: string[], inFlight: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let next = 0;
    let done = 0;
    const one = () => {
      const i = next++;
      client.publish('bench/bare/telemetry', messages[i]!, { qos: 1 }, (err) => {
        if (err) return reject(err);
        if (++done === messages.length) return resolve();
        if (next < messages.length) one();
      });
    };
    for (let k = 0; k < Math.min(inFlight, messages.length); k++) one();
  });
}

/**
 * After filling a store for a drain trial: its files written out (the fill of 30 MB is set-up; the
 * kernel writing it back during the timed drain made the row bimodal on the 2-core CI machine). An
 * fsync in the process, not sync(1): a child process costs the parent a page fault on every page of
 * its heap it writes next (copy-on-write after fork), which landed on the drain.
 */
function settle(file: string): void {
  for (const f of [file, `${file}-wal`]) {
    let fd: number | undefined;
    try {
      fd = openSync(f, 'r+');
      fsyncSync(fd);
    } catch {
      /* no such file: nothing to write out */
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}

/** (c) n buffered readings to mosquitto at QoS 1: dustgate's uplink against a bare mqtt.js loop (median of 5 alternating pairs, after a warm-up pair). */
export async function drain(): Promise<Result[]> {
  const n = quick ? 20_000 : 100_000;
  const mq = await startMosquitto();
  try {
    // 100,000 for the like-for-like row even on a quick run: a 20,000 drain takes 20–30 ms, where a pause of the broker or the collector is the whole difference
    const likeN = Math.max(n, 100_000);
    const bodies = readingBodies(likeN);
    const texts = bodies.map((b, i) => withSeq({ seq: i + 1, kind: 'telemetry', body: b }));
    // unpaced (maxPerS 0): the drain's own speed, not the fleet pacing's ceiling
    const resolved = resolveConfig({ gateway: { id: 'bench-gw' }, mqtt: { url: mq.url, maxBatch: 500, maxPerS: 0 } }).config;
    const mqttCfg = resolved.mqtt;
    // dustgate: a filled store; time from connect to every record acknowledged (and deleted)
    const ours = async (count: number) => {
      const file = path.join(tmp('drain'), 'buffer.db');
      // acknowledged records deleted together, as the gateway's store does (storage.commitMs after the first ack)
      const store = new Store({ path: file, maxMB: 2048, ackDelayMs: resolved.storage.commitMs });
      for (let i = 0; i < count; i += 5000) store.append('telemetry', bodies.slice(i, Math.min(count, i + 5000)));
      settle(file);
      const up = new MqttUplink({ mqtt: mqttCfg, gatewayId: 'bench-gw', store, logger: pino({ level: 'silent' }), version: 'bench', startedAt: new Date().toISOString() });
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        let acked = 0;
        up.on('acked', (first: number, last: number) => {
          acked += last - first + 1;
          if (acked >= count) resolve();
        });
        up.start();
      });
      store.flushAcks(); // drained means deleted: the last acks' delete is inside the timing
      const ms = performance.now() - t0;
      if (store.depth !== 0) throw new Error('drain: records left in the buffer');
      await up.stop();
      store.close();
      return ms;
    };
    // bare mqtt.js: the same readings, one per message, QoS 1, up to 1000 in flight (MQTT has 65,535
    // packet ids, so a loop cannot hand over 100,000 at once: mqtt.js stalls)
    const bare = async (count: number) => {
      const t1 = performance.now();
      const client = await mqtt.connectAsync(mq.url, { clientId: 'bench-bare' });
      await publishAll(client, texts.slice(0, count), 1000);
      const ms = performance.now() - t1;
      await client.endAsync();
      return ms;
    };
    // like for like: a bare mqtt.js loop publishing the same readings in the same messages dustgate
    // sends (500 readings, `{"gateway","readings":[…]}`, QoS 1, 16 in flight): what the store's reads,
    // acks and deletes cost on top of the publishing itself
    const batched = async (count: number) => {
      const per = mqttCfg.maxBatch;
      const t1 = performance.now();
      // the messages are built inside the timing, as any publisher builds what it sends (from readings already serialised)
      const messages: string[] = [];
      for (let i = 0; i < count; i += per) messages.push(`{"gateway":"bench-gw","readings":[${texts.slice(i, Math.min(count, i + per)).join(',')}]}`);
      const client = await mqtt.connectAsync(mq.url, { clientId: 'bench-bare-batched' });
      await publishAll(client, messages, 16);
      const ms = performance.now() - t1;
      await client.endAsync();
      return ms;
    };
    // time ratio bare/ours: medianOfAlternating's "mine" is the bare loop here
    const m = await medianOfAlternating(() => ours(n), () => bare(n), 5);
    const mid = { ours: m.base, bare: m.mine };
    const like = await medianOfAlternating(() => ours(likeN), () => batched(likeN), quick ? 15 : 21);
    return [
      {
        name: `drain ${n} readings to mosquitto (QoS 1)`,
        measured: `${(mid.ours / 1000).toFixed(2)} s (${Math.round(n / (mid.ours / 1000))}/s)`,
        baseline: `${(mid.bare / 1000).toFixed(2)} s bare mqtt.js, one reading a message`,
        ratio: m.ratio,
        target: '≥ 3 (× faster)',
        pass: m.ratio >= 3,
      },
      {
        name: `drain ${likeN} readings, like for like (the same 500-reading messages, QoS 1)`,
        measured: `${(like.base / 1000).toFixed(2)} s (${Math.round(likeN / (like.base / 1000))}/s; ratio ${spreadText(like)})`,
        baseline: `${(like.mine / 1000).toFixed(2)} s bare mqtt.js, same batches`,
        ratio: like.ratio,
        target: '≥ 0.8',
        pass: like.ratio >= 0.8,
      },
    ];
  } finally {
    await mq.stop();
  }
}

/** (d) buffer writes: each reading serialised and written through the store, against bare inserts of the same rows. */
export async function bufferWrites(): Promise<Result> {
  const n = quick ? 20_000 : 100_000;
  const bodies = readingBodies(n);
  const readings = bodies.map((b) => JSON.parse(b) as Record<string, unknown>);
  const oursOnce = () => {
    const store = new Store({ path: path.join(tmp('writes'), 'buffer.db'), maxMB: 2048 });
    const t0 = performance.now();
    for (const r of readings) store.append('telemetry', [JSON.stringify(r)]);
    const ms = performance.now() - t0;
    store.close();
    return ms;
  };
  const bareOnce = () => {
    const db = new Database(path.join(tmp('writes-bare'), 'bare.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL)');
    const ins = db.prepare("INSERT INTO records (kind, body) VALUES ('t', ?)");
    const t0 = performance.now();
    for (const b of bodies) ins.run(b);
    const ms = performance.now() - t0;
    db.close();
    return ms;
  };
  const ours: number[] = [];
  const bare: number[] = [];
  for (let k = 0; k < 3; k++) {
    bare.push(bareOnce());
    ours.push(oursOnce());
  }
  const best = (a: number[]) => Math.min(...a);
  const ratio = best(bare) / best(ours);
  return {
    name: `buffer writes (${n} readings, one per transaction)`,
    measured: `${Math.round(n / (best(ours) / 1000))}/s`,
    baseline: `${Math.round(n / (best(bare) / 1000))}/s bare inserts`,
    ratio,
    target: '≥ 0.5',
    pass: ratio >= 0.5,
  };
}

function procStat(pid: number): { cpuTicks: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  // fields after the name: state(3) … utime(14) stime(15) → index 11, 12 here
  return { cpuTicks: Number(rest[11]) + Number(rest[12]) };
}
function procMem(pid: number): { rssKb: number; hwmKb: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

/**
 * CPU time of a process so far, in seconds: its threads' run time in ns (`/proc/PID/task/TID/schedstat`),
 * where the kernel has it; else its ticks (`/proc/PID/stat`: 10 ms each, so a 25 s window of a process
 * at 1 % of a core is 25 ± 1 of them, a ratio of two such counts ±8 % from rounding alone).
 */
function cpuSeconds(pid: number): number {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        /* a thread that ended: its time goes with it (V8's and libuv's threads live as long as the process) */
      }
    }
    if (ns > 0) return ns / 1e9;
  } catch {
    /* no schedstat: a kernel without CONFIG_SCHED_INFO */
  }
  return procStat(pid).cpuTicks / 100; // USER_HZ on Linux
}

/** CPU time and wall time of a running process over the next `seconds`, and its peak RSS so far. */
async function sample(pid: number, seconds: number): Promise<{ cpuS: number; wallS: number; hwmMb: number }> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  let peakRss = 0;
  while (performance.now() - t0 < seconds * 1000) {
    peakRss = Math.max(peakRss, procMem(pid).rssKb);
    await new Promise((r) => setTimeout(r, 250));
  }
  const cpuS = cpuSeconds(pid) - c0;
  const wallS = (performance.now() - t0) / 1000;
  return { cpuS, wallS, hwmMb: Math.max(peakRss, procMem(pid).hwmKb) / 1024 };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/**
 * (e) 50 devices at 1 Hz over Modbus TCP, telemetry to mosquitto: CPU share and peak RSS of
 * `dustgate run`, against its budgets and against a bare poll→SQLite→MQTT loop (bench/bare-loop.mjs)
 * on the same simulator, broker and Node flags, in alternating pairs (medians).
 */
export async function gatewayLoad(o: { warmS?: number; seconds?: number; pairs?: number } = {}): Promise<Result[]> {
  // three pairs even on a quick run: single runs of either side move ±15 % on the 2-core VM
  // the steady state: dustgate's optimising compiler is still at work 100 s after start (docs/benchmarks.md,
  // thirteenth look); the two warm up together, so a later window costs a pair one warm-up, not two.
  // `seconds`: each side's measured time in a pair, in two windows taken in turn (A B A B)
  const seconds = o.seconds ?? (quick ? 40 : 60);
  const pairs = o.pairs ?? 3;
  const warmS = o.warmS ?? (quick ? 100 : 150);
  const devices = 50;
  const sim = new Simulator(
    parseScenario({
      seed: 1,
      devices: Array.from({ length: devices }, (_, i) => ({
        id: `d${i + 1}`,
        driver: 'cwt-weather-station',
        unit: i + 1,
        values: { pm10: { const: 80, noise: { sd: 5 } }, temperature: 18, windSpeed: { const: 2, noise: { sd: 0.3 } } },
      })),
    }),
    { wireTime: false },
  );
  const port = await freePort();
  await sim.serveTcp('127.0.0.1', port);
  const mq = await startMosquitto();
  // the built binary, run as installed (its shebang carries the Node flags it ships with)
  const dist = path.join(HERE, '../dist/cli.js');
  const flags = ['--max-semi-space-size=4'];
  const startGateway = () => {
    const dir = tmp('load');
    const cfgFile = path.join(dir, 'site.json');
    writeFileSync(
      cfgFile,
      JSON.stringify({
        gateway: { id: 'bench-load' },
        buses: [{ id: 'eth', type: 'tcp', host: '127.0.0.1', port, timeoutMs: 500 }],
        devices: Array.from({ length: devices }, (_, i) => ({ id: `d${i + 1}`, bus: 'eth', unit: i + 1, driver: 'cwt-weather-station', pollMs: 1000 })),
        storage: { path: path.join(dir, 'buffer.db') },
        mqtt: { url: mq.url },
      }),
    );
    const [cmd, args] = existsSync(dist) ? [dist, []] : [process.execPath, [...flags, '--import', 'tsx', path.join(HERE, '../gateway/cli/main.ts')]];
    return spawn(cmd, [...args, 'run', '--config', cfgFile], { stdio: 'ignore', env: { ...process.env, DUSTGATE_LOG_LEVEL: 'warn' } });
  };
  let drainedAll = true;
  const startBare = () => {
    const db = path.join(tmp('bare-loop'), 'bare.db');
    const bare = spawn(process.execPath, [...flags, path.join(HERE, 'bare-loop.mjs'), String(port), String(devices), mq.url, db], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    bare.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    return { proc: bare, out: () => out };
  };
  const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));
  /**
   * One pair: both processes start together and warm up together (start-up is not the steady state:
   * the first polls, V8's memory reducer and the optimising compiler, which works through dustgate's
   * once-a-cycle functions for minutes — docs/benchmarks.md, eleventh and thirteenth looks); then each
   * is measured alone while the other is stopped (SIGSTOP: it takes no CPU and touches no cache), in
   * turns: A B A B, `seconds / 2` a window, A alternating from pair to pair. The box's own noise comes
   * and goes over tens of seconds (one 25 s window of a process reads up to a fifth above its
   * neighbours: the fourteenth look), so each side's share is taken over two windows, interleaved with
   * the other side's. A process just continued gets `settleS` first (its timers fire late once and
   * the poller's first cycle runs at once: about 2 s of extra work, measured), then its cadence
   * resumes. Start-up has its own rows, and the peak RSS still counts it (VmHWM).
   */
  const settleS = 3;
  const pair = async (k: number) => {
    const gw = startGateway();
    const bare = startBare();
    const all = [gw, bare.proc];
    try {
      await sleep(warmS);
      const [a, b] = k % 2 === 0 ? [gw, bare.proc] : [bare.proc, gw];
      const got = new Map<unknown, { cpuS: number; wallS: number; hwmMb: number }>(all.map((p) => [p, { cpuS: 0, wallS: 0, hwmMb: 0 }]));
      b.kill('SIGSTOP');
      for (const [i, p] of [a, b, a, b].entries()) {
        if (i > 0) {
          (p === a ? b : a).kill('SIGSTOP');
          p.kill('SIGCONT');
          await sleep(settleS);
        }
        const w = await sample(p.pid!, seconds / 2);
        const t = got.get(p)!;
        t.cpuS += w.cpuS;
        t.wallS += w.wallS;
        t.hwmMb = Math.max(t.hwmMb, w.hwmMb);
      }
      const of = (p: unknown) => ({ share: (got.get(p)!.cpuS / got.get(p)!.wallS) * 100, hwmMb: got.get(p)!.hwmMb });
      return { ours: of(gw), bare: of(bare.proc) };
    } finally {
      for (const p of all) {
        p.kill('SIGCONT');
        p.kill('SIGTERM');
      }
      await Promise.all(all.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
      // the bare loop must deliver what it stores, as the gateway does
      const counts = JSON.parse(bare.out().trim() || '{}') as { stored?: number; deleted?: number; left?: number };
      if (!counts.stored || counts.left !== 0 || counts.deleted !== counts.stored) drainedAll = false;
    }
  };
  try {
    const ours: { share: number; hwmMb: number }[] = [];
    const bare: { share: number; hwmMb: number }[] = [];
    for (let k = 0; k < pairs; k++) {
      const r = await pair(k);
      ours.push(r.ours);
      bare.push(r.bare);
    }
    const share = median(ours.map((r) => r.share));
    const hwmMb = median(ours.map((r) => r.hwmMb));
    const bareShare = median(bare.map((r) => r.share));
    const bareMb = median(bare.map((r) => r.hwmMb));
    const spread = (a: number[], d = 2) => `${Math.min(...a).toFixed(d)}–${Math.max(...a).toFixed(d)}`;
    // the verdict is the median of the pairs' own ratios, as the Modbus TCP row's: a pair's two sides
    // are measured in interleaved windows minutes apart, so what the box does to a pair (a busier
    // neighbour, a slower quarter of an hour) is in both its sides; two pairs' medians need not be
    const ratios = ours.map((r, i) => r.share / bare[i]!.share);
    const ratio = median(ratios);
    return [
      {
        name: `${devices} devices at 1 Hz, ${seconds} s from ${warmS} s after start or later: CPU of one core`,
        measured: `${share.toFixed(2)} %`,
        baseline: 'budget 5 %',
        ratio: share / 5,
        target: '≤ 1 (of budget)',
        pass: share <= 5,
      },
      {
        name: `${devices} devices at 1 Hz, ${seconds} s from ${warmS} s after start or later: peak RSS`,
        measured: `${hwmMb.toFixed(1)} MB`,
        baseline: 'budget 120 MB',
        ratio: hwmMb / 120,
        target: '≤ 1 (of budget)',
        pass: hwmMb <= 120,
      },
      {
        name: `${devices} devices at 1 Hz: CPU, dustgate run ÷ a bare poll→SQLite→MQTT loop (${pairs} pairs warmed up together, each side measured alone in turns A B A B, A alternating; the pairs' ratios ${ratios.map((x) => x.toFixed(2)).join(', ')}, their median; the sides' medians ${(share / bareShare).toFixed(3)}; bare loop drained everything: ${drainedAll ? 'yes' : 'NO'})`,
        measured: `${share.toFixed(2)} % (${spread(ours.map((r) => r.share))})`,
        baseline: `${bareShare.toFixed(2)} % (${spread(bare.map((r) => r.share))}) bare loop`,
        ratio,
        target: '≤ 1.2 (median pair)',
        pass: drainedAll && ratio <= 1.2,
      },
      {
        name: `${devices} devices at 1 Hz: peak RSS, dustgate run ÷ the bare loop`,
        measured: `${hwmMb.toFixed(1)} MB (${spread(ours.map((r) => r.hwmMb), 1)})`,
        baseline: `${bareMb.toFixed(1)} MB (${spread(bare.map((r) => r.hwmMb), 1)}) bare loop`,
        ratio: hwmMb / bareMb,
        target: '≤ 1.2',
        pass: drainedAll && hwmMb / bareMb <= 1.2,
      },
    ];
  } finally {
    await sim.stop();
    await mq.stop();
  }
}
