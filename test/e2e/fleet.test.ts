/**
 * A fleet that recovers together: 200 simulated gateways (each its own client id, SQLite store and
 * the real uplink) against mosquitto; the broker is stopped, each gateway holds ten minutes of
 * readings, the broker restarts: every gateway's seqs arrive, complete, at a persistent subscriber;
 * reconnects are spread by full jitter rather than landing in the same second.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetSim } from '../../gateway/fleet.js';
import path from 'node:path';
import { ROOT, Subscriber, startMosquitto, tempDir } from '../helpers/gateway-rig.js';
import { runCommand, waitFor } from '../helpers/system.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  stops.length = 0;
});

describe('a fleet after a broker outage', () => {
  it('200 gateways with 10 minutes of backlog each: the broker restarts, every seq of every gateway arrives, reconnects spread over seconds', { timeout: 120_000 }, async () => {
    const dir = tempDir('fleet');
    const m = await startMosquitto({ persistence: true, dir });
    stops.push(() => m.stop());
    // a persistent session: what is published while it reconnects after the restart is kept for it
    const sub = await Subscriber.connect(m.url, 'dustgate/+/telemetry', { clientId: 'fleet-consumer', clean: false });
    stops.push(() => sub.close());
    const fleet = new FleetSim({ gateways: 200, url: m.url, dir: `${dir}/stores`, logger: pino({ level: 'silent' }), mqtt: { reconnectMaxS: 8 } });
    stops.push(() => fleet.stop());
    await fleet.start();
    await waitFor(() => fleet.connected === 200, 30_000, 100);

    await m.stop();
    await waitFor(() => fleet.connected === 0, 10_000, 50);
    const backlog = fleet.fillBacklog(600);
    expect(backlog).toBe(200 * 600);
    await new Promise((r) => setTimeout(r, 3000)); // the reconnect attempts back off meanwhile
    const connects: number[] = [];
    for (const g of fleet.members) g.uplink.on('connect', () => connects.push(Date.now()));
    const restartedAt = Date.now();
    await m.start();
    await waitFor(() => fleet.connected === 200, 60_000, 100);
    await waitFor(() => fleet.depth <= 200, 60_000, 100);
    const drainedS = (Date.now() - restartedAt) / 1000;

    // every gateway's seqs, 1 to its last, at the subscriber
    const last = new Map(fleet.members.map((g) => [g.id, g.lastSeq]));
    const missing = () => {
      const got = new Map<string, Set<number>>();
      for (const msg of sub.on('telemetry')) {
        const gw = msg.payload.gateway as string;
        const set = got.get(gw) ?? got.set(gw, new Set()).get(gw)!;
        for (const r of msg.payload.readings as { seq: number }[]) set.add(r.seq);
      }
      let n = 0;
      for (const [gw, lastSeq] of last) for (let s = 1; s <= lastSeq; s++) if (!got.get(gw)?.has(s)) n++;
      return n;
    };
    await waitFor(() => missing() === 0, 30_000, 250);
    // reconnects spread out: no single second took them all
    const perSecond = new Map<number, number>();
    for (const t of connects) perSecond.set(Math.floor((t - restartedAt) / 1000), (perSecond.get(Math.floor((t - restartedAt) / 1000)) ?? 0) + 1);
    expect(connects.length).toBeGreaterThanOrEqual(200);
    expect(Math.max(...perSecond.values())).toBeLessThan(200);
    expect(perSecond.size).toBeGreaterThanOrEqual(3);
    expect(drainedS).toBeLessThan(60);
  });
});

describe('dustgate fleet-sim', () => {
  it('runs the gateways and says what happened, as JSON; a bad broker URL is one line', async () => {
    const m = await startMosquitto();
    stops.push(() => m.stop());
    const sub = await Subscriber.connect(m.url, 'dustgate/+/telemetry');
    stops.push(() => sub.close());
    const cli = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'fleet-sim', ...args], { cwd: ROOT, timeoutMs: 30_000 });
    const r = await cli(['--gateways', '5', '--broker', m.url, '--seconds', '3', '--backlog-min', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout) as Record<string, number>;
    expect(s).toMatchObject({ gateways: 5, backlog: 300, connected: 5 });
    expect(s.published).toBeGreaterThanOrEqual(300);
    expect(s.drainedAfterS).toBeLessThan(3);
    expect(new Set(sub.readings().map((x) => x.seq)).size).toBeGreaterThanOrEqual(60);
    expect(new Set(sub.on('telemetry').map((x) => x.payload.gateway)).size).toBe(5);
    const bad = await cli(['--broker', 'localhost:1883']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });
});
