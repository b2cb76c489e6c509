/**
 * A fleet recovering together: 200 simulated gateways (gateway/fleet.ts: each its own client id,
 * SQLite store and the real uplink with full-jitter reconnects and the paced drain) against
 * mosquitto; the broker stops, each gateway holds ten minutes of readings, the broker restarts.
 * Reported: the time from the restart until every backlog is drained, the peak reconnects in one
 * second (out of 200), and whether every seq of every gateway reached a persistent subscriber.
 */
import mqtt from 'mqtt';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { FleetSim } from '../gateway/fleet.js';
import { quick, startMosquitto, type Result } from './common.js';

export async function fleetRecovery(): Promise<Result[]> {
  const n = 200;
  const backlogS = 600;
  const m = await startMosquitto({ persistence: true });
  const got = new Map<string, Set<number>>();
  const sub = await mqtt.connectAsync(m.url, { clientId: 'bench-fleet-consumer', clean: false });
  sub.on('message', (_t, payload) => {
    const p = JSON.parse(payload.toString()) as { gateway: string; readings: { seq: number }[] };
    const set = got.get(p.gateway) ?? got.set(p.gateway, new Set()).get(p.gateway)!;
    for (const r of p.readings) set.add(r.seq);
  });
  await sub.subscribeAsync('dustgate/+/telemetry', { qos: 1 });
  const fleet = new FleetSim({ gateways: n, url: m.url, dir: mkdtempSync(path.join(os.tmpdir(), 'dustgate-bench-fleet-')), logger: pino({ level: 'silent' }), mqtt: { reconnectMaxS: quick ? 8 : 30 } });
  const wait = async (cond: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('fleet bench: timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await fleet.start();
    await wait(() => fleet.connected === n, 60_000);
    await m.stop();
    await wait(() => fleet.connected === 0, 10_000);
    fleet.fillBacklog(backlogS);
    await new Promise((r) => setTimeout(r, 3000));
    const connects: number[] = [];
    for (const g of fleet.members) g.uplink.on('connect', () => connects.push(Date.now()));
    const t0 = Date.now();
    await m.start();
    await wait(() => fleet.connected === n && fleet.depth <= n, 120_000);
    const drainS = (Date.now() - t0) / 1000;
    const complete = () => fleet.members.every((g) => {
      const s = got.get(g.id);
      for (let q = 1; q <= g.lastSeq; q++) if (!s?.has(q)) return false;
      return true;
    });
    await wait(complete, 60_000).catch(() => undefined);
    const perSecond = new Map<number, number>();
    for (const t of connects) perSecond.set(Math.floor((t - t0) / 1000), (perSecond.get(Math.floor((t - t0) / 1000)) ?? 0) + 1);
    const peak = Math.max(0, ...perSecond.values());
    const ok = complete();
    return [
      { name: `fleet: ${n} gateways × ${backlogS / 60} min backlog after a broker restart, time to drain every backlog (all seqs complete: ${ok ? 'yes' : 'NO'})`, measured: `${drainS.toFixed(1)} s`, baseline: `${n * backlogS} readings`, ratio: drainS / (n * backlogS / 1000), target: 'figure, complete', pass: ok },
      { name: `fleet: peak reconnects in one second after the restart (full jitter)`, measured: `${peak}/s`, baseline: `${n} gateways`, ratio: peak / n, target: '< 1 (spread)', pass: peak < n },
    ];
  } finally {
    await fleet.stop();
    await sub.endAsync();
    await m.stop();
  }
}
