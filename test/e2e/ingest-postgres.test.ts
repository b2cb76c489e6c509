/**
 * Operators consume a fleet without loss or double counting: two `dustgate ingest` processes in one
 * MQTT 5 shared-subscription group split 20 gateways' telemetry between them and write it to a real
 * PostgreSQL. The broker is restarted, one consumer is killed (-9) and started again, the database
 * goes away for a while: at the end the table holds every (gateway, seq) each gateway wrote, once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FleetSim } from '../../gateway/fleet.js';
import { ROOT, startMosquitto, tempDir } from '../helpers/gateway-rig.js';
import { startPostgres } from '../helpers/postgres.js';
import { waitFor } from '../helpers/system.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  stops.length = 0;
});

interface Consumer { proc: ChildProcess; stats: Record<string, number>[]; err: () => string }

function ingest(broker: string, db: string, clientId: string): Consumer {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'ingest', '--broker', broker, '--db', db, '--group', 'city', '--client-id', clientId, '--stats-s', '1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DUSTGATE_LOG_LEVEL: 'info' },
  });
  const c: Consumer = { proc, stats: [], err: () => err };
  let err = '';
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += String(d);
    const lines = out.split('\n');
    out = lines.pop()!;
    for (const l of lines) if (l.trim()) c.stats.push(JSON.parse(l) as Record<string, number>);
  });
  proc.stderr!.on('data', (d) => (err = (err + String(d)).slice(-8000)));
  stops.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const done = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await done;
    }
  });
  return c;
}

const last = (c: Consumer, k: string) => c.stats[c.stats.length - 1]?.[k] ?? 0;
const exited = (p: ChildProcess) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once('exit', r)));

describe('dustgate ingest: two consumers, one shared subscription, PostgreSQL', () => {
  it('after a broker restart, a consumer killed and restarted and a database outage, every (gateway, seq) is in the table exactly once', { timeout: 150_000 }, async () => {
    const dir = tempDir('ingest-pg');
    const db = await startPostgres();
    stops.push(() => db.stop());
    const m = await startMosquitto({ persistence: true, dir });
    stops.push(() => m.stop());

    let a = ingest(m.url, db.url, 'ingest-a');
    const b = ingest(m.url, db.url, 'ingest-b');
    await waitFor(() => last(a, 'connects') >= 1 && last(b, 'connects') >= 1, 30_000, 100).catch(() => {
      throw new Error(`consumers did not connect:\n${a.err()}\n${b.err()}`);
    });

    // 20 gateways, 5 readings a second each, one minute of backlog to start with
    const fleet = new FleetSim({ gateways: 20, url: m.url, dir: path.join(dir, 'stores'), logger: pino({ level: 'silent' }), rate: 5, mqtt: { reconnectMaxS: 2, maxBatch: 50, requireSubscriber: true } });
    stops.push(() => fleet.stop());
    await fleet.start();
    fleet.fillBacklog(60);
    await waitFor(() => fleet.connected === 20, 20_000, 100);
    await new Promise((r) => setTimeout(r, 2000));
    // both consumers took a share of the fleet's messages
    await waitFor(() => last(a, 'messages') > 0 && last(b, 'messages') > 0, 10_000, 100);

    // the broker restarts (it keeps the consumers' sessions and what it had queued)
    await m.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await m.start();
    await waitFor(() => fleet.connected === 20 && last(a, 'connects') >= 2 && last(b, 'connects') >= 2, 30_000, 100);

    // consumer a dies without a word and comes back under the same client id
    a.proc.kill('SIGKILL');
    await exited(a.proc);
    await new Promise((r) => setTimeout(r, 1500));
    a = ingest(m.url, db.url, 'ingest-a');
    await waitFor(() => last(a, 'connects') >= 1, 30_000, 100);

    // the database goes away for a while: nothing is acknowledged meanwhile, nothing lost
    await db.stop();
    await new Promise((r) => setTimeout(r, 2000));
    await db.start();

    await new Promise((r) => setTimeout(r, 2000));
    fleet.pause();
    await waitFor(() => fleet.depth === 0, 60_000, 100);
    const expected = new Map(fleet.members.map((g) => [g.id, g.lastSeq]));
    const total = [...expected.values()].reduce((s, n) => s + n, 0);
    expect(total).toBeGreaterThan(20 * 300);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    stops.push(() => client.end());
    const count = async () => Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM dustgate_telemetry')).rows[0]!.n);
    await waitFor(async () => (await count()) >= total, 60_000, 250).catch(async () => {
      throw new Error(`the table holds ${await count()} of ${total} readings\n${a.err().slice(-2000)}\n${b.err().slice(-2000)}`);
    });
    // every gateway: seqs 1..last, each once (the key makes a second copy impossible; the count and range make a gap visible)
    const per = await client.query<{ gateway: string; n: string; lo: string; hi: string; distinct: string }>(
      'SELECT gateway, count(*) AS n, min(seq) AS lo, max(seq) AS hi, count(DISTINCT seq) AS distinct FROM dustgate_telemetry GROUP BY gateway ORDER BY gateway',
    );
    expect(per.rows).toHaveLength(20);
    for (const r of per.rows) {
      const want = expected.get(r.gateway)!;
      expect({ gateway: r.gateway, n: Number(r.n), lo: Number(r.lo), hi: Number(r.hi), distinct: Number(r.distinct) }).toEqual({ gateway: r.gateway, n: want, lo: 1, hi: want, distinct: want });
    }
    // what a reading holds arrived intact
    const one = await client.query<{ device: string; metrics: Record<string, number>; flags: Record<string, string> }>("SELECT device, metrics, flags FROM dustgate_telemetry WHERE gateway = 'fleet-0001' AND seq = 1");
    expect(one.rows[0]).toMatchObject({ device: 'head', flags: { pm10: 'N' } });
    expect(typeof one.rows[0]!.metrics.pm10).toBe('number');

    // both consumers worked; the database outage was survived by retrying, not by dropping
    await waitFor(() => last(b, 'inserted') > 0 && last(a, 'inserted') > 0, 5000, 100);
    expect([...a.stats, ...b.stats].some((s) => (s.dbErrors ?? 0) > 0)).toBe(true);
    expect(last(a, 'rejected') + last(b, 'rejected')).toBe(0);
  });
});
