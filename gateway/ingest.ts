/**
 * `dustgate ingest`: the reference consumer of a fleet's uplink. It subscribes with an MQTT 5 shared
 * subscription (`$share/<group>/<prefix>/+/telemetry`, `…/events`, `…/aggregates`), so that several
 * consumers in one group split the fleet between them, and writes what arrives to SQLite or
 * PostgreSQL keyed by (gateway, seq) (gateway/ingest-sinks.ts).
 *
 * Exactly once, from at-least-once pieces: a message's PUBACK goes to the broker only after its rows
 * are committed (mqtt.js `handleMessage`), the session is persistent (clean start off, a session
 * expiry), so what arrives while a consumer is down or restarting waits at the broker or comes again;
 * and a key already stored is skipped, so what comes twice is stored once.
 */
import os from 'node:os';
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt';
import { readFileSync } from 'node:fs';
import type { Logger } from './log.js';
import { Backoff } from '../drivers/reopen.js';
import type { AggregateRow, EventRow, IngestBatch, IngestSink, TelemetryRow } from './ingest-sinks.js';

export interface IngestOptions {
  url: string;
  sink: IngestSink;
  logger: Logger;
  /** the shared-subscription group; '' subscribes without sharing (one consumer gets everything) */
  group?: string;
  /** stable across restarts: the broker keeps this client's session (and what it missed) under it */
  clientId?: string;
  topicPrefix?: string;
  /** how long the broker keeps the session while this consumer is away (MQTT 5 session expiry) */
  sessionExpiryS?: number;
  username?: string;
  password?: string;
  ca?: string;
}

export interface IngestCounters {
  /** MQTT messages taken */
  messages: number;
  /** readings, events and aggregates in them */
  rows: number;
  inserted: number;
  /** came again (a redelivery, a resend): skipped */
  duplicates: number;
  /** a stored (gateway, seq) with another time: the gateway's seqs started again */
  conflicts: number;
  /** messages or rows that are not a dustgate payload: counted, acknowledged, not stored */
  rejected: number;
  /** failed database writes (tried again; the message is not acknowledged meanwhile) */
  dbErrors: number;
  connects: number;
}

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const isTime = (v: unknown): v is string => typeof v === 'string' && Number.isFinite(Date.parse(v));
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 200;

/** The rows of one message, by its topic's last level; `undefined` for a payload that is not ours. Bad items are left out and counted. */
export function parseMessage(topic: string, payload: Buffer): { batch: IngestBatch; rejected: number } | undefined {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (body === null || typeof body !== 'object') return undefined;
  const levels = topic.split('/');
  const gateway = isName(body.gateway) ? body.gateway : levels[levels.length - 2];
  if (!isName(gateway)) return undefined;
  const kind = levels[levels.length - 1];
  const json = (v: unknown) => JSON.stringify(v ?? {});
  let rejected = 0;
  if (kind === 'telemetry' && Array.isArray(body.readings)) {
    const rows: TelemetryRow[] = [];
    for (const r of body.readings as Record<string, unknown>[]) {
      if (r && isSeq(r.seq) && isTime(r.ts) && isName(r.device)) rows.push({ gateway, seq: r.seq, ts: r.ts, device: r.device, metrics: json(r.values), flags: json(r.flags) });
      else rejected++;
    }
    return { batch: { kind: 'telemetry', rows }, rejected };
  }
  if (kind === 'events' && Array.isArray(body.events)) {
    const rows: EventRow[] = [];
    for (const e of body.events as Record<string, unknown>[]) {
      if (e && isSeq(e.seq) && isTime(e.ts) && isName(e.type)) rows.push({ gateway, seq: e.seq, ts: e.ts, type: e.type, body: json(e) });
      else rejected++;
    }
    return { batch: { kind: 'events', rows }, rejected };
  }
  if (kind === 'aggregates' && isSeq(body.seq) && isTime(body.start) && isName(body.period) && isName(body.device)) {
    const rows: AggregateRow[] = [{ gateway, seq: body.seq, period: body.period, start: body.start, device: body.device, body: json(body) }];
    return { batch: { kind: 'aggregates', rows }, rejected };
  }
  return undefined;
}

export class Ingest {
  readonly counters: IngestCounters = { messages: 0, rows: 0, inserted: 0, duplicates: 0, conflicts: 0, rejected: 0, dbErrors: 0, connects: 0 };
  private client: MqttClient | undefined;
  private stopping = false;
  private readonly retry = new Backoff(500, 30_000);
  readonly topics: string[];

  constructor(private readonly o: IngestOptions) {
    const prefix = o.topicPrefix ?? 'dustgate';
    const group = o.group ?? 'dustgate-ingest';
    this.topics = ['telemetry', 'events', 'aggregates'].map((k) => `${group ? `$share/${group}/` : ''}${prefix}/+/${k}`);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Connects and subscribes; resolves on the first subscription (the broker may still be down: then it keeps trying). */
  start(): Promise<void> {
    const o = this.o;
    const opts: IClientOptions = {
      protocolVersion: 5,
      clientId: o.clientId ?? `dustgate-ingest-${os.hostname()}-${o.group ?? 'dustgate-ingest'}`,
      clean: false,
      properties: { sessionExpiryInterval: o.sessionExpiryS ?? 86_400 },
      keepalive: 30,
      reconnectPeriod: 1000,
      reconnectOnConnackError: true,
      // no table of 65,536 ready-made packet-id buffers (about 6 MB of heap): see gateway/uplink/mqtt.ts
      writeCache: false,
      ...(o.username ? { username: o.username, password: o.password } : {}),
      ...(o.ca ? { ca: readFileSync(o.ca) } : {}),
    };
    const client = mqtt.connect(o.url, opts);
    this.client = client;
    // the PUBACK is sent when `done` is called: only after the rows are committed
    client.handleMessage = (packet: IPublishPacket, done: (err?: Error) => void) => {
      this.take(packet).then(() => done(), (e: unknown) => done(e as Error));
    };
    client.on('error', (e) => o.logger.warn({ err: e.message }, 'broker'));
    client.on('close', () => !this.stopping && o.logger.warn({ url: o.url }, 'broker connection lost'));
    return new Promise<void>((resolve) => {
      client.on('connect', (ack) => {
        this.counters.connects++;
        o.logger.info({ url: o.url, sessionPresent: ack.sessionPresent, topics: this.topics }, 'broker connected');
        // subscribing again with a session present changes nothing; without one it makes the subscription
        client.subscribe(this.topics, { qos: 1 }, (err, granted) => {
          if (err) o.logger.error({ err: err.message }, 'subscribe failed');
          else if (granted?.some((g) => g.qos > 2)) o.logger.error({ granted }, 'the broker refused the subscription (does it take MQTT 5 shared subscriptions?)');
          else resolve();
        });
      });
    });
  }

  private async take(packet: IPublishPacket): Promise<void> {
    this.counters.messages++;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const parsed = parseMessage(packet.topic, payload);
    if (!parsed) {
      this.counters.rejected++;
      this.o.logger.warn({ topic: packet.topic, bytes: payload.length }, 'not a dustgate payload: acknowledged, not stored');
      return;
    }
    this.counters.rejected += parsed.rejected;
    this.counters.rows += parsed.batch.rows.length;
    // the database is down or busy: try again with backoff, the message stays unacknowledged (and the broker holds the rest)
    for (;;) {
      try {
        const r = await this.o.sink.write(parsed.batch);
        this.retry.reset();
        this.counters.inserted += r.inserted;
        this.counters.duplicates += r.duplicates;
        if (r.conflicts > 0) {
          this.counters.conflicts += r.conflicts;
          this.o.logger.warn({ topic: packet.topic, conflicts: r.conflicts }, 'seqs already stored with another time: was this gateway\'s store replaced? those rows were skipped');
        }
        return;
      } catch (e) {
        this.counters.dbErrors++;
        if (this.stopping) throw e;
        const wait = this.retry.next();
        this.o.logger.error({ err: (e as Error).message, retryInMs: Math.round(wait) }, 'database write failed');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.client?.endAsync();
    await this.o.sink.close();
  }
}
