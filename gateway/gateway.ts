/**
 * The gateway: buses and devices → poller → readings (flagged) → store → uplink, and readings +
 * time → rules → outputs. One object per running config.
 */
import { EventEmitter } from 'node:events';
import { Bus } from '../drivers/bus.js';
import { DeviceClient } from '../drivers/device.js';
import type { DriverError } from '../drivers/errors.js';
import type { BindingInterface } from '../drivers/transports/link.js';
import { definitionOf, metricsOf, redact, type LoadedConfig } from './config/load.js';
import { METRICS, type Config, type Metric } from './config/schema.js';
import { createLogger, type Logger } from './log.js';
import { OutputManager, type OutputFault } from './outputs.js';
import { Poller, type RawReading } from './poller.js';
import { commFailure, flagValues, type Reading } from './reading.js';
import { RulesEngine, type OutputCommand, type RuleEvent } from './rules/engine.js';
import { Store, type Eviction } from './store.js';
import { MqttUplink } from './uplink/mqtt.js';
import { VERSION } from './version.js';

export interface GatewayOptions {
  loaded: LoadedConfig;
  /** Wall clock (tests pass a fake or scaled one). */
  now?: () => number;
  /** Serial binding override (tests: the simulator's mock binding). */
  binding?: BindingInterface;
  logger?: Logger;
  /** Real ms between rule evaluations when no reading arrives. */
  tickMs?: number;
  /** Bus reopen backoff (tests shorten it). */
  reopenMaxMs?: number;
}

export interface GatewayEvent extends RuleEvent {
  seq?: number;
}

/** The device each rule metric is taken from: `sources`, else the first device that measures it. */
export function resolveSources(c: Config): Partial<Record<Metric, string>> {
  const out: Partial<Record<Metric, string>> = { ...c.sources };
  for (const m of METRICS) {
    if (out[m]) continue;
    const d = c.devices.find((dev) => metricsOf(definitionOf(dev)).includes(m));
    if (d) out[m] = d.id;
  }
  return out;
}

export class Gateway extends EventEmitter {
  readonly config: Config;
  readonly logger: Logger;
  readonly now: () => number;
  readonly buses = new Map<string, Bus>();
  readonly devices = new Map<string, DeviceClient>();
  readonly store: Store;
  readonly engine: RulesEngine;
  readonly outputs: OutputManager;
  readonly uplink: MqttUplink | undefined;
  private poller: Poller;
  private tick: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  readonly startedAt: string;
  private metricsOfDevice = new Map<string, string[]>();
  private deviceConfig = new Map<string, Config['devices'][number]>();
  /** Devices whose readings feed a rule: metric sources and input modules. */
  private ruleDevices = new Set<string>();
  readonly counters = { readings: 0, events: 0, evictedTelemetry: 0, evictedEvents: 0 };

  constructor(private readonly opts: GatewayOptions) {
    super();
    const c = opts.loaded.config;
    this.config = c;
    this.now = opts.now ?? Date.now;
    this.logger = opts.logger ?? createLogger('dustgate');
    this.startedAt = new Date(this.now()).toISOString();
    for (const b of c.buses) {
      if (b.type === 'firmata') throw new Error(`buses: ${b.id} is a firmata bus, which this build does not drive yet; remove it or use Modbus relays`);
      this.buses.set(b.id, new Bus(b, { binding: opts.binding, reopenMaxMs: opts.reopenMaxMs }));
    }
    for (const d of c.devices) {
      const def = definitionOf(d);
      const client = new DeviceClient(this.buses.get(d.bus)!, def, { id: d.id, unit: d.unit, pollMs: d.pollMs, offlineAfter: d.offlineAfter, timeoutMs: d.timeoutMs });
      this.devices.set(d.id, client);
      const bank = def.kind === 'modbus' ? (def.coils ?? def.discreteInputs) : undefined;
      const channels = bank ? Array.from({ length: bank.count }, (_, i) => `ch${i + 1}`) : [];
      this.metricsOfDevice.set(d.id, [...metricsOf(def), ...channels]);
    }
    this.store = new Store({ path: c.storage.path, maxMB: c.storage.maxMB, durability: c.storage.durability });
    const sources = resolveSources(c);
    this.engine = new RulesEngine({ rules: c.rules, outputs: c.outputs, inputs: c.inputs, sources, timezone: opts.loaded.timezone }, this.now());
    for (const d of c.devices) this.deviceConfig.set(d.id, d);
    for (const id of Object.values(sources)) this.ruleDevices.add(id);
    for (const i of Object.values(c.inputs)) this.ruleDevices.add(i.device);
    this.outputs = new OutputManager(c.outputs, this.devices, (f) => this.outputFault(f), this.logger);
    this.poller = new Poller([...this.devices.values()], { now: this.now, logger: this.logger });
    this.poller.on('reading', (r: RawReading) => this.onReading(r));
    this.poller.on('read-error', (id: string, e: DriverError) => this.onReadError(id, e));
    for (const d of this.devices.values()) d.on('status', (status: string) => this.record([{ type: 'device_status', ts: this.now(), device: d.id, status }]));
    if (c.mqtt.enabled)
      this.uplink = new MqttUplink({ mqtt: c.mqtt, gatewayId: c.gateway.id, store: this.store, logger: this.logger, version: VERSION, startedAt: this.startedAt });
    for (const w of opts.loaded.warnings) this.logger.warn({ path: w.path }, `config: ${w.path}: ${w.message}`);
  }

  get id(): string {
    return this.config.gateway.id;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.logger.info({ gateway: this.id, version: VERSION, devices: this.devices.size, buffer: this.store.stats() }, 'starting');
    await Promise.all([...this.buses.values()].map((b) => b.start()));
    this.uplink?.start();
    this.uplink?.publishConfig({ ...redact(this.config), version: Number(this.store.meta('config.version') ?? 1) });
    // outputs start off, confirmed by the devices
    const states = await this.outputs.allOff();
    this.logger.info({ outputs: states }, 'outputs off at start-up');
    this.poller.start();
    this.tick = setInterval(() => this.evaluate(), this.opts.tickMs ?? 250);
    this.publishState();
  }

  /** Outputs off and read back, buffer flushed as far as the broker allows, everything closed. */
  async stop(reason = 'shutdown'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tick) clearInterval(this.tick);
    await this.poller.stop();
    if (this.started) {
      const commands = this.engine.allOff(this.now(), reason);
      this.handle({ events: this.engine.drainEvents(), commands });
      // every output, not only those the rules had on: off and read back
      await this.outputs.allOff();
      await this.outputs.idle();
      this.logger.info({ outputs: this.outputs.actual }, 'outputs off at shutdown');
      this.publishState();
      if (this.uplink?.connected) await this.uplink.flush(2000);
    }
    await this.uplink?.stop();
    await Promise.all([...this.buses.values()].map((b) => b.stop()));
    this.store.close();
    this.logger.info({ gateway: this.id }, 'stopped');
  }

  // ---------------------------------------------------------------- data path

  private onReading(raw: RawReading): void {
    const cfg = this.deviceConfig.get(raw.device);
    const reading: Reading = { device: raw.device, ts: Date.parse(raw.ts), values: raw.values, flags: flagValues(raw.values, cfg?.ranges ?? {}) };
    this.storeReading(reading);
    this.outputs.onReading(reading);
    // only readings the rules use (sources and inputs) need an evaluation now; the tick covers time
    if (this.ruleDevices.has(raw.device)) {
      this.engine.ingest(reading);
      this.evaluate();
    }
  }

  private onReadError(device: string, _e: DriverError): void {
    this.storeReading(commFailure(device, this.now(), this.metricsOfDevice.get(device) ?? []));
  }

  private storeReading(r: Reading): void {
    const body = JSON.stringify({ ts: new Date(r.ts).toISOString(), device: r.device, values: r.values, flags: r.flags });
    const { seqs, eviction } = this.store.append('telemetry', [body]);
    this.counters.readings++;
    this.emit('reading', { ...r, seq: seqs[0] });
    if (eviction) this.overflow(eviction);
    this.uplink?.pumpSoon();
  }

  private overflow(ev: Eviction): void {
    this.counters.evictedTelemetry += ev.telemetry;
    this.counters.evictedEvents += ev.events;
    this.logger.warn({ evicted: ev, total: this.store.evicted }, 'buffer full: oldest records evicted');
    this.record([{ type: 'buffer_overflow', ts: this.now(), evictedTelemetry: ev.telemetry, evictedEvents: ev.events, totalEvicted: this.store.evicted.telemetry + this.store.evicted.events, maxMB: this.config.storage.maxMB }]);
  }

  /** Store events (each gets its seq) and hand them on. */
  record(events: RuleEvent[]): void {
    if (!events.length || this.stopped && !this.started) return;
    const bodies = events.map((e) => JSON.stringify({ ...e, ts: new Date(e.ts).toISOString() }));
    const { seqs, eviction } = this.store.append('event', bodies);
    events.forEach((e, i) => {
      this.counters.events++;
      const lvl = e.type === 'output_fault' || e.type === 'sprinkler_blocked' || e.type === 'buffer_overflow' ? 'warn' : 'info';
      this.logger[lvl]({ event: e.type, seq: seqs[i], data: { ...e, ts: undefined, type: undefined } }, `event ${e.type}`);
      this.emit('event', { ...e, seq: seqs[i] } satisfies GatewayEvent);
    });
    if (eviction) this.overflow(eviction);
    this.uplink?.pumpSoon();
    this.publishState();
  }

  private evaluate(): void {
    if (this.stopped) return;
    this.handle(this.engine.evaluate(this.now()));
    this.publishState();
  }

  private handle({ events, commands }: { events: RuleEvent[]; commands: OutputCommand[] }): void {
    this.record(events);
    for (const c of commands) {
      void this.outputs.set(c.output, c.on).then(() => this.publishState());
    }
  }

  private outputFault(f: OutputFault): void {
    this.record([{ type: 'output_fault', ts: this.now(), ...f }]);
  }

  // ---------------------------------------------------------------- state

  state() {
    const devices: Record<string, string> = {};
    for (const [id, d] of this.devices) devices[id] = d.status;
    return { ts: new Date(this.now()).toISOString(), ...this.engine.snapshot(this.now()), outputs: { ...this.outputs.actual }, devices };
  }

  private lastStateKey = '';
  /** Publish P/state when something other than the time, the temperature or the wind mean changed. */
  publishState(): void {
    const s = this.state();
    const key = JSON.stringify({ ...s, ts: undefined, sprinkling: { ...s.sprinkling, temperature: undefined }, sweeping: { ...s.sweeping, windMean: undefined } });
    if (key === this.lastStateKey) return;
    this.lastStateKey = key;
    this.uplink?.publishState(s, key);
    this.emit('state', s);
  }
}
