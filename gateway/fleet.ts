/**
 * A fleet in one process (`dustgate fleet-sim`): N lightweight gateways, each with its own client id,
 * its own SQLite store and backlog, and the real uplink (`MqttUplink`: full-jitter reconnects, the
 * paced drain), producing a reading a second. What a city's broker sees when hundreds of gateways
 * come back after an outage: how fast every backlog drains, and how fast they reconnect.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from './log.js';
import { resolveConfig } from './config/load.js';
import { Store } from './store.js';
import { MqttUplink } from './uplink/mqtt.js';
import { VERSION } from './version.js';

export interface FleetOptions {
  gateways: number;
  /** the broker, e.g. mqtt://127.0.0.1:1883 */
  url: string;
  /** where each gateway's store goes (one SQLite file per gateway) */
  dir: string;
  logger: Logger;
  /** gateway ids: `<prefix>-0001`… */
  prefix?: string;
  /** readings a second per gateway (live) */
  rate?: number;
  mqtt?: { maxPerS?: number; maxInFlight?: number; reconnectMaxS?: number; maxBatch?: number; requireSubscriber?: boolean };
}

export interface FleetMember {
  id: string;
  store: Store;
  uplink: MqttUplink;
  /** the last seq written */
  lastSeq: number;
}

const reading = (ts: number, i: number) =>
  JSON.stringify({ ts: new Date(ts).toISOString(), device: 'head', values: { pm10: 60 + (i % 40), pm25: 30 + (i % 20), temperature: 12.5, windSpeed: 2.1 }, flags: { pm10: 'N', pm25: 'N', temperature: 'N', windSpeed: 'N' } });

export class FleetSim {
  readonly members: FleetMember[] = [];
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;

  constructor(private readonly o: FleetOptions) {}

  async start(): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true });
    const prefix = this.o.prefix ?? 'fleet';
    for (let i = 1; i <= this.o.gateways; i++) {
      const id = `${prefix}-${String(i).padStart(4, '0')}`;
      const mqtt = resolveConfig({ gateway: { id }, mqtt: { url: this.o.url, ...this.o.mqtt } }).config.mqtt;
      const store = new Store({ path: path.join(this.o.dir, `${id}.db`), maxMB: 64 });
      const uplink = new MqttUplink({ mqtt, gatewayId: id, store, logger: this.o.logger, version: VERSION, startedAt: new Date().toISOString() });
      this.members.push({ id, store, uplink, lastSeq: 0 });
    }
    for (const m of this.members) m.uplink.start();
    // live readings: each gateway `rate` a second, spread over the second
    const rate = this.o.rate ?? 1;
    const slots = 10;
    this.timer = setInterval(() => {
      const slot = this.tick++ % slots;
      const now = Date.now();
      for (let k = slot; k < this.members.length; k += slots) for (let r = 0; r < rate; r++) this.write(this.members[k]!, [reading(now, this.tick)]);
    }, 1000 / slots);
  }

  private write(m: FleetMember, bodies: string[]): void {
    const { seqs } = m.store.append('telemetry', bodies);
    m.lastSeq = Math.max(m.lastSeq, ...seqs);
    m.uplink.pumpSoon();
  }

  /** Put `seconds` of readings (`rate` a second, dated in the past) in every gateway's store: the backlog an outage leaves. */
  fillBacklog(seconds: number): number {
    const rate = this.o.rate ?? 1;
    const now = Date.now();
    let n = 0;
    for (const m of this.members) {
      const bodies = Array.from({ length: seconds * rate }, (_, i) => reading(now - (seconds - i / rate) * 1000, i));
      for (let i = 0; i < bodies.length; i += 5000) this.write(m, bodies.slice(i, i + 5000));
      n += bodies.length;
    }
    return n;
  }

  get connected(): number {
    return this.members.filter((m) => m.uplink.connected).length;
  }

  /** Records still waiting, over every gateway. */
  get depth(): number {
    return this.members.reduce((n, m) => n + m.store.depth, 0);
  }

  /** Stop producing live readings; the uplinks go on draining what is stored. */
  pause(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async stop(): Promise<void> {
    this.pause();
    await Promise.all(this.members.map((m) => m.uplink.stop({ quiet: true })));
    for (const m of this.members) m.store.close();
  }
}
