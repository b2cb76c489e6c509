/**
 * MQTT uplink (SPEC §8, outbound): drains the store in seq order at QoS 1 and deletes a batch only
 * on its PUBACK; status (with the last will), retained state and effective config.
 *
 * Delivery: a bounded window of batches is handed to mqtt.js. A batch in flight when the connection
 * drops stays in mqtt.js's outgoing store and is re-sent first on reconnect (mqtt.js emits `connect`
 * only after that), so order holds; after a crash the store still has it and it is sent again
 * (at least once: subscribers de-duplicate by seq).
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { Backoff } from '../../drivers/reopen.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { batchBody, type RecordBatch, type RecordBuffer } from '../record-buffer.js';
import type { Uplink } from './uplink.js';
import { TOPIC, topics, type Topic } from '../contract.js';

export interface MqttUplinkOptions {
  mqtt: Config['mqtt'];
  gatewayId: string;
  /** the record buffer it drains (as consumer `name`) */
  store: RecordBuffer & { deferAcks?: boolean };
  logger: Logger;
  version: string;
  startedAt: string;
  /** Batches in flight at once. */
  window?: number;
  reconnectMinMs?: number;
}

const CLOSE = Buffer.from(']}');
const TOPIC_OF = { telemetry: TOPIC.telemetry, event: TOPIC.events, aggregate: TOPIC.aggregates } as const;

export function topicPrefix(c: Pick<Config['mqtt'], 'topicPrefix'>, gatewayId: string): string {
  return topics.base(c.topicPrefix, gatewayId);
}

export class MqttUplink extends EventEmitter implements Uplink {
  readonly name = 'mqtt';
  readonly takes = 'records';
  readonly prefix: string;
  private client: MqttClient | undefined;
  private cursor = 0;
  private inflight = 0;
  private readonly window: number;
  private lastState = '';
  private state: unknown;
  private config: unknown;
  private stopping = false;
  private readonly backoff: Backoff;
  private backoffMs: number;
  readonly counters = { published: 0, acked: 0, batches: 0, connects: 0, disconnects: 0, unrouted: 0 };
  /** mqtt.requireSubscriber: the PUBACK being handled said "no matching subscribers" (read synchronously in its publish callback) */
  private unrouted = false;
  /** …and then sending waits until then (performance.now()), backing off while nobody subscribes */
  private holdUntil = 0;
  private readonly holdBackoff: Backoff;

  constructor(private readonly o: MqttUplinkOptions) {
    super();
    this.prefix = topicPrefix(o.mqtt, o.gatewayId);
    this.window = o.window ?? o.mqtt.maxInFlight ?? 16;
    this.tokens = o.mqtt.maxPerS ?? 0;
    this.backoff = new Backoff(o.reconnectMinMs ?? 1000, o.mqtt.reconnectMaxS * 1000);
    this.backoffMs = this.backoff.initialMs;
    this.holdBackoff = new Backoff(1000, o.mqtt.reconnectMaxS * 1000);
    o.store.deferAcks = true;
    o.store.addConsumer(this.name);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  private statusPayload(state: 'online' | 'offline'): string {
    return JSON.stringify({ state, version: this.o.version, startedAt: this.o.startedAt });
  }

  start(): void {
    const m = this.o.mqtt;
    const readPem = (file: string, what: string) => {
      try {
        return readFileSync(file);
      } catch (e) {
        throw new Error(`mqtt.${what}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`);
      }
    };
    const opts: IClientOptions = {
      // MQTT 5 only where its PUBACK reason codes are needed
      protocolVersion: m.requireSubscriber ? 5 : 4,
      clientId: `dustgate-${this.o.gatewayId}`,
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      reconnectPeriod: this.backoffMs,
      // a broker that refuses once (restarting, its auth backend not up yet: "server unavailable",
      // "not authorized") is tried again with the same backoff; mqtt.js would otherwise stop for good
      reconnectOnConnackError: true,
      will: { topic: `${this.prefix}/${TOPIC.status}`, payload: Buffer.from(this.statusPayload('offline')), qos: 1, retain: true },
      ...(m.username ? { username: m.username, password: m.password } : {}),
      ...(m.ca ? { ca: readPem(m.ca, 'ca') } : {}),
      ...(m.cert ? { cert: readPem(m.cert, 'cert') } : {}),
      ...(m.key ? { key: readPem(m.key, 'key') } : {}),
      rejectUnauthorized: true,
      // mqtt-packet would otherwise keep a ready-made 2-byte buffer for each of the 65,536 packet
      // ids: about 6 MB of heap (65,536 Buffer objects) for a gateway with a few dozen in flight
      writeCache: false,
    };
    const client = mqtt.connect(m.url, opts);
    this.client = client;
    const log = this.o.logger;
    // mqtt.js emits the PUBACK here, then (synchronously) calls the publish's callback; 0x10 is not an error to it
    if (m.requireSubscriber) client.on('packetreceive', (p) => (this.unrouted = p.cmd === 'puback' && p.reasonCode === 0x10));
    client.on('connect', () => {
      this.counters.connects++;
      this.backoff.reset();
      this.backoffMs = this.backoff.initialMs;
      client.options.reconnectPeriod = this.backoffMs;
      log.info({ url: m.url }, 'broker connected');
      this.publishRetained(TOPIC.status, this.statusPayload('online'));
      if (this.config !== undefined) this.publishRetained(TOPIC.config, JSON.stringify(this.config));
      if (this.state !== undefined) this.publishRetained(TOPIC.state, JSON.stringify(this.state));
      this.emit('connect');
      this.pump();
    });
    client.on('close', () => {
      if (this.stopping) return;
      this.counters.disconnects++;
      // exponential backoff with full jitter between attempts, up to mqtt.reconnectMaxS
      this.backoffMs = Math.max(1, this.backoff.next());
      client.options.reconnectPeriod = this.backoffMs;
      this.emit('disconnect');
    });
    let lastErr = '';
    client.on('error', (e) => {
      // the broker said no (bad credentials, not authorised): tell whoever waits for this connection
      if ((e as { code?: number }).code !== undefined && /Not authorized|Bad user|Identifier rejected|unacceptable/i.test(e.message)) this.emit('refused', e.message);
      else if (/certificate|self.signed|alert|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH/i.test(e.message)) this.emit('refused', e.message.replace(/\s+/g, ' '));
      if (e.message !== lastErr) log.warn({ err: e.message, url: m.url }, `broker: ${e.message}`);
      lastErr = e.message;
    });
    client.on('offline', () => {
      if (!this.stopping) log.warn({ url: m.url, retryMs: this.backoffMs }, 'broker unreachable; buffering');
    });
    client.on('message', (topic, payload) => this.emit('message', topic, payload));
  }

  private publishRetained(sub: Topic, payload: string): void {
    if (!this.connected) return;
    this.client!.publish(`${this.prefix}/${sub}`, payload, { qos: 1, retain: true });
  }

  /** Retained state; published when `key` (the state without its volatile parts) changes, and on every connect. */
  publishState(state: unknown, key: string): boolean {
    this.state = state;
    if (key === this.lastState) return false;
    this.lastState = key;
    this.publishRetained(TOPIC.state, JSON.stringify(state));
    return true;
  }

  publishConfig(config: unknown): void {
    this.config = config;
    this.publishRetained(TOPIC.config, JSON.stringify(config));
  }

  /** Publish a non-buffered message (command results, config results). */
  publish(sub: Topic, payload: string, retain = false): void {
    this.client?.publish(`${this.prefix}/${sub}`, payload, { qos: 1, retain });
  }

  subscribe(topics: string[]): void {
    this.client?.subscribe(topics, { qos: 1 });
  }

  private pumpTimer: NodeJS.Timeout | undefined;
  /** New records are in the store: send soon (live records arriving close together share a message). */
  pumpSoon(delayMs = 20): void {
    if (this.pumpTimer) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, delayMs);
  }

  /** Records the pace allows now (mqtt.maxPerS: a token bucket holding at most one second's worth). */
  private tokens: number;
  private tokensAt = performance.now();
  private allowance(): number {
    const rate = this.o.mqtt.maxPerS ?? 0;
    if (!rate) return Infinity;
    const now = performance.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    return Math.floor(this.tokens);
  }

  /** Send what the window and the pace allow. */
  pump(): void {
    const client = this.client;
    if (!client || this.stopping) return;
    try {
      const held = this.holdUntil - performance.now();
      if (held > 0) {
        this.pumpSoon(Math.ceil(held));
        return;
      }
      while (client.connected && this.inflight < this.window) {
        const allow = this.allowance();
        if (allow < 1) {
          // paced: a fleet draining its backlogs after an outage does not flood the broker
          this.pumpSoon(Math.ceil(1000 / (this.o.mqtt.maxPerS || 1)) + 5);
          return;
        }
        let batch = this.o.store.nextText(this.cursor, Math.min(this.o.mqtt.maxBatch, allow));
        if (!batch) return;
        // aggregates go one per message (P/aggregates: one device and period each)
        if (batch.kind === 'aggregate' && batch.count > 1) batch = this.o.store.nextText(this.cursor, 1)!;
        if (this.o.mqtt.maxPerS) this.tokens -= batch.count;
        this.send(client, batch);
      }
    } catch (e) {
      // a store that cannot be read (I/O error): try again shortly, never throw into a timer
      this.o.logger.error({ err: (e as Error).message }, `uplink: reading the buffer failed: ${(e as Error).message}`);
      this.pumpSoon(1000);
    }
  }

  private send(client: MqttClient, batch: RecordBatch): void {
    const { first, last, kind, count, bytes } = batch;
    this.cursor = last;
    this.inflight++;
    const gw = JSON.stringify(this.o.gatewayId);
    // the stored bytes go out as they are, between a head and a tail
    const payload =
      kind === 'aggregate'
        ? Buffer.concat([Buffer.from(`{"gateway":${gw},`), batchBody(batch).subarray(1)])
        : batchBody(batch, Buffer.from(`{"gateway":${gw},"${kind === 'telemetry' ? 'readings' : 'events'}":[`), CLOSE);
    this.counters.published += count;
    this.counters.batches++;
    client.publish(`${this.prefix}/${TOPIC_OF[kind]}`, payload, { qos: 1 }, (err) => {
      this.inflight--;
      const unrouted = this.unrouted;
      this.unrouted = false;
      if (!err && unrouted) {
        // the broker took it but had nobody to give it to (the consumers' shared subscription not back
        // after a broker restart): keep it, and try again after a wait that grows while that lasts
        this.counters.unrouted += count;
        this.cursor = Math.min(this.cursor, first - 1);
        if (this.holdUntil <= performance.now()) {
          const wait = Math.max(100, this.holdBackoff.next());
          this.holdUntil = performance.now() + wait;
          this.o.logger.warn({ first, last, retryMs: wait }, 'no subscriber took this batch (mqtt.requireSubscriber): kept, sending again later');
        }
      } else if (err) {
        // not delivered and no longer in mqtt.js's hands: read it again from the store
        if (!this.stopping) this.o.logger.warn({ err: err.message, first, last }, 'publish failed; will resend from the buffer');
        this.cursor = Math.min(this.cursor, first - 1);
      } else {
        this.o.store.ack(first, last, { count, bytes }, this.name);
        this.counters.acked += count;
        this.holdBackoff.reset();
        this.emit('acked', first, last);
      }
      this.pump();
    });
  }

  /** Send the buffered records of [from, to] again (those still held); returns how many. */
  republish(from: number, to: number): number {
    const n = this.o.store.countRange(from, to);
    if (n && this.cursor >= from) this.cursor = from - 1;
    this.pump();
    return n;
  }

  /** Wait until everything buffered is acknowledged (or `timeoutMs` passes). */
  async flush(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.inflight === 0 && !this.o.store.nextText(this.cursor, 1)) return true;
      this.pump();
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  /** Say offline (retained) and disconnect; `quiet` when a new connection takes over. */
  async stop(o: { quiet?: boolean } = {}): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (client.connected && !o.quiet) {
      await new Promise<void>((resolve) => {
        client.publish(`${this.prefix}/${TOPIC.status}`, this.statusPayload('offline'), { qos: 1, retain: true }, () => resolve());
        setTimeout(resolve, 1000).unref();
      });
    }
    this.stopping = true;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    await client.endAsync(true).catch(() => undefined);
  }
}
