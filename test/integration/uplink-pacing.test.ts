/**
 * The drain is paced: after an outage a backlog goes out at most `mqtt.maxPerS` records a second
 * (a second's worth at once), in `mqtt.maxInFlight` messages at a time, so a fleet coming back
 * together does not flood its broker; unpaced (`maxPerS: 0`) it goes as fast as the broker acks.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../../gateway/broker.js';
import { resolveConfig } from '../../gateway/config/load.js';
import { MemoryRecordBuffer } from '../../gateway/record-buffer.js';
import { MqttUplink } from '../../gateway/uplink/mqtt.js';
import { Subscriber } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  stops.length = 0;
});

async function drainOf(records: number, mqtt: Record<string, unknown>): Promise<{ ms: number; perHalfSecond: number[]; maxInFlight: number; writeCache: unknown }> {
  const broker = await startEmbeddedBroker('127.0.0.1', 0);
  stops.push(() => broker.stop());
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const sub = await Subscriber.connect(url);
  stops.push(() => sub.close());
  const store = new MemoryRecordBuffer(64 * 1024 * 1024);
  const t0 = Date.parse('2026-12-02T00:00:00Z');
  store.append('telemetry', Array.from({ length: records }, (_, i) => JSON.stringify({ ts: new Date(t0 + i * 1000).toISOString(), device: 'head', values: { pm10: i % 200 }, flags: { pm10: 'N' } })));
  const cfg = resolveConfig({ gateway: { id: 'paced-0001' }, mqtt: { url, ...mqtt } }).config.mqtt;
  const up = new MqttUplink({ mqtt: cfg, gatewayId: 'paced-0001', store, logger: pino({ level: 'silent' }), version: 't', startedAt: '' });
  stops.push(() => up.stop());
  const acks: number[] = [];
  let maxInFlight = 0;
  const publish = up['send'].bind(up);
  up['send'] = (client: never, batch: never) => {
    publish(client, batch);
    maxInFlight = Math.max(maxInFlight, up['inflight'] as number);
  };
  let start = 0;
  up.once('connect', () => (start = performance.now()));
  up.on('acked', (a: number, b: number) => {
    for (let s = a; s <= b; s++) acks.push(performance.now());
  });
  up.start();
  const writeCache = (up['client'] as unknown as { options: { writeCache?: boolean } }).options.writeCache;
  await waitFor(() => acks.length >= records, 20_000, 20);
  const ms = acks.at(-1)! - start;
  const perHalfSecond: number[] = [];
  for (const t of acks) perHalfSecond[Math.floor((t - start) / 500)] = (perHalfSecond[Math.floor((t - start) / 500)] ?? 0) + 1;
  await waitFor(() => sub.readings().length >= records, 10_000, 20);
  expect(new Set(sub.readings().map((r) => r.seq)).size).toBe(records);
  return { ms, perHalfSecond: Array.from(perHalfSecond, (x) => x ?? 0), maxInFlight, writeCache };
}

describe('a paced drain', () => {
  it("3,000 records at maxPerS 1000: about 2 s (a second's worth at once, then 1000 a second), never more than maxInFlight messages out", async () => {
    const r = await drainOf(3000, { maxPerS: 1000, maxBatch: 100, maxInFlight: 4 });
    expect(r.ms).toBeGreaterThan(1700);
    expect(r.ms).toBeLessThan(4500);
    // after the first second's burst, no half second carries much more than its 500
    for (const n of r.perHalfSecond.slice(2)) expect(n).toBeLessThanOrEqual(500 + 100);
    expect(r.maxInFlight).toBeLessThanOrEqual(4);
  });

  it('unpaced (maxPerS 0) the same backlog goes as fast as the broker acknowledges', async () => {
    const r = await drainOf(3000, { maxPerS: 0, maxBatch: 100, maxInFlight: 4 });
    expect(r.ms).toBeLessThan(1500);
    // and the uplink's client told mqtt.js not to have mqtt-packet keep its table of 65,536 ready-made
    // packet-id buffers (about 6 MB of heap on a Pi): packet ids are written as they come
    expect(r.writeCache).toBe(false);
  });
});
