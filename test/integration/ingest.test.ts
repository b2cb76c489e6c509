/**
 * The consumer side (gateway/ingest.ts, gateway/ingest-sinks.ts) against mosquitto and a SQLite
 * file: a shared subscription splits the messages between two consumers, a message that comes twice
 * is stored once, a payload that is not ours is counted and acknowledged (never redelivered for
 * ever), a reused seq with another time is a conflict; and a gateway with `mqtt.requireSubscriber`
 * keeps what the broker had no subscriber for, where without it the broker drops it.
 */
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../gateway/config/load.js';
import { Ingest, parseMessage } from '../../gateway/ingest.js';
import { SqliteSink } from '../../gateway/ingest-sinks.js';
import { Store } from '../../gateway/store.js';
import { MqttUplink } from '../../gateway/uplink/mqtt.js';
import { ROOT, startMosquitto, tempDir } from '../helpers/gateway-rig.js';
import { runCommand, waitFor } from '../helpers/system.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  stops.length = 0;
});

const silent = pino({ level: 'silent' });
const T0 = Date.parse('2026-12-02T08:00:00Z');
const reading = (seq: number) => ({ seq, ts: new Date(T0 + seq * 1000).toISOString(), device: 'head', values: { pm10: 50 + (seq % 30) }, flags: { pm10: 'N' } });

async function consumer(url: string, file: string, clientId: string): Promise<Ingest> {
  const ing = new Ingest({ url, sink: await SqliteSink.open(file), logger: silent, group: 'ops', clientId, sessionExpiryS: 60 });
  stops.push(() => ing.stop());
  await ing.start();
  return ing;
}

describe('parseMessage', () => {
  it('takes telemetry, events and aggregates; leaves out and counts items without a seq, a time or a name; refuses what is not ours', () => {
    const tel = parseMessage('dustgate/g1/telemetry', Buffer.from(JSON.stringify({ gateway: 'g1', readings: [reading(1), { ...reading(2), seq: -1 }, { ...reading(3), ts: 'yesterday' }, { ...reading(4), device: '' }] })));
    expect(tel?.batch.kind).toBe('telemetry');
    expect(tel?.batch.rows.map((r) => r.seq)).toEqual([1]);
    expect(tel?.rejected).toBe(3);
    expect(JSON.parse((tel!.batch.rows[0] as { metrics: string }).metrics)).toEqual({ pm10: 51 });
    const ev = parseMessage('dustgate/g1/events', Buffer.from(JSON.stringify({ gateway: 'g1', events: [{ seq: 7, ts: new Date(T0).toISOString(), type: 'dust_alarm', state: 'raised' }] })));
    expect(ev?.batch).toMatchObject({ kind: 'events', rows: [{ gateway: 'g1', seq: 7, type: 'dust_alarm' }] });
    const agg = parseMessage('dustgate/g1/aggregates', Buffer.from(JSON.stringify({ gateway: 'g1', seq: 9, period: 'minute', start: new Date(T0).toISOString(), device: 'head', metrics: {} })));
    expect(agg?.batch).toMatchObject({ kind: 'aggregates', rows: [{ seq: 9, period: 'minute' }] });
    // the gateway from the topic when the payload has none
    expect(parseMessage('dustgate/g2/telemetry', Buffer.from(JSON.stringify({ readings: [reading(1)] })))?.batch.rows[0]?.gateway).toBe('g2');
    for (const bad of ['not json', '[]', 'null', '{"gateway":"g1","readings":"many"}', '{"gateway":"g1"}'])
      expect(parseMessage('dustgate/g1/telemetry', Buffer.from(bad)), bad).toBeUndefined();
  });
});

describe('dustgate ingest into SQLite, two consumers in one group', () => {
  it('the group splits the messages; each (gateway, seq) is stored once however often it comes; garbage is acknowledged and counted', { timeout: 60_000 }, async () => {
    const m = await startMosquitto();
    stops.push(() => m.stop());
    const file = path.join(tempDir('ingest'), 'city.db');
    const a = await consumer(m.url, file, 'ops-a');
    const b = await consumer(m.url, file, 'ops-b');
    const pub = await mqtt.connectAsync(m.url);
    stops.push(() => pub.endAsync(true));
    // 4 gateways × 50 messages × 10 readings, every message sent twice (a gateway's resend after a lost PUBACK)
    for (let g = 1; g <= 4; g++)
      for (let k = 0; k < 50; k++) {
        const body = JSON.stringify({ gateway: `gw-${g}`, readings: Array.from({ length: 10 }, (_, i) => reading(k * 10 + i + 1)) });
        await pub.publishAsync(`dustgate/gw-${g}/telemetry`, body, { qos: 1 });
        await pub.publishAsync(`dustgate/gw-${g}/telemetry`, body, { qos: 1 });
      }
    await pub.publishAsync('dustgate/gw-1/events', JSON.stringify({ gateway: 'gw-1', events: [{ seq: 501, ts: new Date(T0).toISOString(), type: 'sprinkler_blocked', reason: 'temperature_below_min', temperature: 3.5 }] }), { qos: 1 });
    await pub.publishAsync('dustgate/gw-1/aggregates', JSON.stringify({ gateway: 'gw-1', seq: 502, period: 'minute', start: new Date(T0).toISOString(), device: 'head', metrics: { pm10: { mean: 61 } } }), { qos: 1 });
    await pub.publishAsync('dustgate/gw-1/telemetry', 'garbage', { qos: 1 });

    const all = () => ({ messages: a.counters.messages + b.counters.messages, inserted: a.counters.inserted + b.counters.inserted, duplicates: a.counters.duplicates + b.counters.duplicates, rejected: a.counters.rejected + b.counters.rejected });
    await waitFor(() => all().messages === 403, 20_000, 50);
    expect(all()).toEqual({ messages: 403, inserted: 2002, duplicates: 2000, rejected: 1 });
    // shared: each took a part, neither took all
    expect(a.counters.messages).toBeGreaterThan(0);
    expect(b.counters.messages).toBeGreaterThan(0);
    expect(a.counters.messages).toBeLessThan(403);

    const db = new Database(file, { readonly: true });
    stops.push(async () => db.close());
    const per = db.prepare('SELECT gateway, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM dustgate_telemetry GROUP BY gateway ORDER BY gateway').all();
    expect(per).toEqual([1, 2, 3, 4].map((g) => ({ gateway: `gw-${g}`, n: 500, lo: 1, hi: 500 })));
    expect(JSON.parse(db.prepare("SELECT body FROM dustgate_events WHERE gateway = 'gw-1' AND seq = 501").pluck().get() as string)).toMatchObject({ type: 'sprinkler_blocked', temperature: 3.5 });
    expect(db.prepare('SELECT period FROM dustgate_aggregates WHERE seq = 502').pluck().get()).toBe('minute');

    // a gateway whose store was replaced starts its seqs again: a stored (gateway, seq) with another time is a conflict, not overwritten
    await pub.publishAsync('dustgate/gw-2/telemetry', JSON.stringify({ gateway: 'gw-2', readings: [{ ...reading(1), ts: '2027-01-01T00:00:00.000Z' }] }), { qos: 1 });
    await waitFor(() => a.counters.conflicts + b.counters.conflicts === 1, 10_000, 50);
    expect(db.prepare("SELECT ts FROM dustgate_telemetry WHERE gateway = 'gw-2' AND seq = 1").pluck().get()).toBe(reading(1).ts);
  });
});

describe('mqtt.requireSubscriber', () => {
  async function uplinkWithBacklog(url: string, requireSubscriber: boolean, id: string) {
    const store = new Store({ path: path.join(tempDir('unrouted'), 'buffer.db'), maxMB: 16 });
    stops.push(async () => store.close());
    const cfg = resolveConfig({ gateway: { id }, mqtt: { url, requireSubscriber, reconnectMaxS: 2 } }).config.mqtt;
    const up = new MqttUplink({ mqtt: cfg, gatewayId: id, store, logger: silent, version: 't', startedAt: '' });
    stops.push(() => up.stop());
    store.append('telemetry', Array.from({ length: 20 }, (_, i) => JSON.stringify({ ...reading(i + 1), seq: undefined })));
    up.start();
    await waitFor(() => up.connected, 10_000, 20);
    return { store, up };
  }

  it('keeps a batch nobody subscribed to and sends it again until a consumer takes it; without it the broker drops it', { timeout: 60_000 }, async () => {
    const m = await startMosquitto();
    stops.push(() => m.stop());
    const kept = await uplinkWithBacklog(m.url, true, 'kept-0001');
    const dropped = await uplinkWithBacklog(m.url, false, 'dropped-0001');
    // no subscriber anywhere: the plain gateway's records are "delivered" (to nobody) and gone; the other keeps them
    await waitFor(() => dropped.store.depth === 0, 10_000, 50);
    await waitFor(() => kept.up.counters.unrouted >= 20, 10_000, 50);
    await new Promise((r) => setTimeout(r, 1500));
    expect(kept.store.depth).toBe(20);
    expect(kept.up.counters.acked).toBe(0);

    const file = path.join(tempDir('ingest-late'), 'late.db');
    const late = await consumer(m.url, file, 'late-a');
    await waitFor(() => kept.store.depth === 0, 20_000, 50);
    await waitFor(() => late.counters.inserted === 20, 10_000, 50);
    const db = new Database(file, { readonly: true });
    stops.push(async () => db.close());
    expect(db.prepare('SELECT gateway, count(*) AS n FROM dustgate_telemetry GROUP BY gateway').all()).toEqual([{ gateway: 'kept-0001', n: 20 }]);
  });
});

describe('dustgate ingest, the command', () => {
  it('a database it cannot open or a broker that is not a URL is one line naming what to give, exit 1', { timeout: 30_000 }, async () => {
    const cli = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), '--lang', 'en', 'ingest', ...args], { cwd: ROOT, timeoutMs: 15_000 });
    for (const [args, says] of [
      [['--broker', 'mqtt://127.0.0.1:1', '--db', '/etc/passwd'], /--db: cannot open \/etc\/passwd: file is not a database — give a writable SQLite file/],
      [['--broker', 'mqtt://127.0.0.1:1', '--db', 'postgres://ops:hunter2@127.0.0.1:1/city'], /--db: cannot open postgres:\/\/ops:\*\*\*@127\.0\.0\.1:1\/city: .*ECONNREFUSED/],
      [['--broker', '127.0.0.1:1883'], /--broker: expected mqtt:\/\/HOST:PORT/],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(says);
      expect(r.stderr).not.toContain('hunter2');
    }
  });
});
