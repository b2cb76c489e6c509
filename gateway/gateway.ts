/**
 * The gateway: buses and devices → poller → readings (flagged) → store → uplink, and readings +
 * time → rules → outputs. The store, the uplink and the rules' state live as long as the process;
 * the runtime (buses, devices, poller, outputs) is rebuilt when a new config is applied.
 */
import { EventEmitter } from 'node:events';
import type { DriverError } from '../drivers/errors.js';
import type { BindingInterface } from '../drivers/transports/link.js';
import type { FirmataBus, FirmataIoFactory } from '../drivers/firmata.js';
import { redact, type LoadedConfig } from './config/load.js';
import type { Locale } from './i18n.js';
import { LatestValues, StateView } from './state-view.js';
import { AggregateReports } from './reports.js';
import { OutputSafety } from './output-safety.js';
import { HealthEvents } from './health-events.js';
import { RecordBatch } from './record-batch.js';
import { RulesClock } from './rules-clock.js';
import { ConfigApplier, startingConfig, type ApplyHost, type ApplyMeta, type ApplyResult, type ConfigChange } from './config-apply.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './log.js';
import type { RawReading } from './poller.js';
import { commFailure, flagValues, telemetryBody, type Reading } from './reading.js';
import { RulesEngine, type OutputCommand, type RuleEvent } from './rules/engine.js';
import { Aggregator } from './aggregates.js';
import type { Hj212Uplink } from './hj212/uplink.js';
import { HttpServer } from './http.js';
import { RemoteHandler } from './remote.js';
import { Runtime, engineInputs } from './runtime.js';
import { Store } from './store.js';
import { StorageGuard, type StorageStatus } from './storage-guard.js';
import { GatewayClock, clockFrom, type Clock, type ClockStep } from './clock.js';
import type { MqttUplink } from './uplink/mqtt.js';
import type { Uplink } from './uplink/uplink.js';
import { hj212Uplinks, mqttUplink } from './uplinks.js';
import { VERSION } from './version.js';
import { WARN_EVENTS, type EventOrigin } from './contract.js';

export { resolveSources } from './runtime.js';
export type { ApplyMeta, ApplyResult, ConfigChange } from './config-apply.js';

export interface GatewayOptions {
  loaded: LoadedConfig;
  /** Wall clock (tests pass a fake or scaled one; without `mono` it is the monotonic clock too). */
  now?: () => number;
  /** Monotonic clock for durations (tests that step `now` pass a real one). */
  mono?: () => number;
  /** Serial binding override (tests: the simulator's mock binding). */
  binding?: BindingInterface;
  /** Firmata IO override (tests: the simulator's virtual board). */
  firmataIo?: FirmataIoFactory;
  logger?: Logger;
  /** Heartbeat of the rules and the data path's clocks (ms, default 1000; rules-clock.ts). */
  tickMs?: number;
  /** Bus reopen backoff (tests shorten it). */
  reopenMaxMs?: number;
  /** false: no status page (tests that run many gateways) */
  http?: boolean;
}

export type GatewayEvent = RuleEvent & { seq?: number };

export class Gateway extends EventEmitter implements ApplyHost {
  config: Config;
  loaded: LoadedConfig;
  version = 1;
  readonly logger: Logger;
  readonly now: () => number;
  /** wall time for timestamps and calendar rules, monotonic time for every duration */
  readonly clock: Clock;
  readonly store: Store;
  /** the store's writes, kept from reaching the control path */
  readonly storage: StorageGuard;
  readonly engine: RulesEngine;
  uplink: MqttUplink | undefined;
  /** @internal the running config's buses, devices, poller and outputs (replaced by a config change) */
  rt: Runtime;
  private readonly applier: ConfigApplier;
  remote: RemoteHandler | undefined;
  readonly aggregator: Aggregator;
  hj212: Hj212Uplink[] = [];
  /** latest value and last hour of each source metric (HJ 212 real-time data, the page) */
  readonly latest = new LatestValues();
  /** P/state, /api/state, the buffer figures and the status light */
  readonly view: StateView;
  private readonly reports: AggregateReports;
  private readonly safety: OutputSafety;
  /** @internal the gateway's own footing as events (health-events.ts); readings written together (record-batch.ts) */
  readonly health = new HealthEvents(this);
  readonly batch: RecordBatch;
  http: HttpServer | undefined;
  private lastAggTick = -Infinity;
  private readonly rulesClock: RulesClock;
  /** @internal */ started = false;
  private stopped = false;
  readonly startedAt: string;
  readonly counters = { readings: 0, events: 0, evictedTelemetry: 0, evictedEvents: 0, evaluations: 0 };

  constructor(private readonly opts: GatewayOptions) {
    super();
    this.logger = opts.logger ?? createLogger('dustgate');
    const onStep = (s: ClockStep) => this.health.clockStepped(s);
    this.clock = opts.now ? clockFrom(opts.now, opts.mono, onStep) : new GatewayClock(Date.now, opts.mono, onStep);
    this.now = () => this.clock.now();
    this.startedAt = new Date(this.now()).toISOString();
    const c0 = opts.loaded.config;
    this.store = new Store({ path: c0.storage.path, maxMB: c0.storage.maxMB, durability: c0.storage.durability, ackDelayMs: c0.storage.commitMs });
    this.storage = new StorageGuard(this.store, { now: this.now, mono: () => this.clock.mono(), logger: this.logger });
    this.storage.on('change', (st: StorageStatus) => this.health.storageChanged(st));
    ({ loaded: this.loaded, version: this.version } = startingConfig(this.store, opts.loaded, this.logger));
    const c = this.loaded.config;
    this.config = c;
    this.rt = this.buildRuntime(c);
    this.batch = new RecordBatch(this, c.storage.commitMs);
    this.engine = new RulesEngine({ rules: c.rules, outputs: c.outputs, inputs: engineInputs(c), sources: this.rt.sources, timezone: this.loaded.timezone }, this.clock.mono(), {
      wallOf: (t) => this.clock.wallOf(t),
    });
    this.aggregator = new Aggregator(this.loaded.timezone);
    const level = this.store.meta('alertLevel');
    if (level) {
      this.engine.setAlertLevel(level as never, this.clock.mono(), { by: 'restored' });
      this.engine.drainEvents();
    }
    this.hj212 = hj212Uplinks(this, c, { timeZone: this.loaded.timezone, sources: this.rt.sources, latest: () => this.latest.bySource });
    if (c.mqtt.enabled) {
      this.remote = new RemoteHandler(this, (topic, payload) => this.uplink?.publish(topic, payload));
      this.uplink = mqttUplink(this, c);
    }
    this.applier = new ConfigApplier(this);
    this.view = new StateView(this);
    this.reports = new AggregateReports(this);
    this.safety = new OutputSafety(this);
    this.rulesClock = new RulesClock({ periodMs: opts.tickMs ?? 1000, mono: () => this.clock.mono(), run: (beat) => this.evaluate(beat) });
    for (const w of this.loaded.warnings) this.logger.warn({ path: w.path }, `config: ${w.path}: ${w.message}`);
  }

  /** The site file this gateway was started with (the regulation's floors and flags come from it). */
  get siteFile(): LoadedConfig {
    return this.opts.loaded;
  }

  get stopping(): boolean {
    return this.stopped;
  }

  /**
   * Validate and apply a new site config (a patch deep-merged into the current one, or a whole
   * one) while running: readings keep their seq, the rules keep their state (config-apply.ts).
   */
  applyConfig(change: ConfigChange, meta: ApplyMeta = {}): Promise<ApplyResult> {
    return this.applier.applyConfig(change, meta);
  }

  /** Changes that queued up, validated one by one and applied together (remote operations). */
  applyConfigs(items: { change: ConfigChange; meta: ApplyMeta }[]): Promise<ApplyResult[]> {
    return this.applier.applyConfigs(items);
  }

  /** @internal */
  makeUplink = (c: Config): MqttUplink => mqttUplink(this, c);

  /** Every uplink running: each consumes what it sends from the store itself (uplink/uplink.ts). */
  get uplinks(): Uplink[] {
    return [this.uplink, ...this.hj212].filter((u): u is MqttUplink | Hj212Uplink => u !== undefined);
  }

  /** @internal */
  buildRuntime(c: Config, reuse?: Map<string, FirmataBus>): Runtime {
    return new Runtime(
      c,
      { binding: this.opts.binding, firmataIo: this.opts.firmataIo, reopenMaxMs: this.opts.reopenMaxMs, now: this.now, mono: () => this.clock.mono(), logger: this.logger, reuse },
      {
        onReading: (r) => this.onReading(r),
        onReadError: (id, e) => this.onReadError(id, e),
        onCycleEnd: () => void (this.batch.cycleEnd(), this.rulesClock.cycleEnd()),
        onStatus: (device, status) => this.health.deviceStatus(device, status),
        onFault: (f) => this.health.outputFault(f),
      },
    );
  }

  get id(): string {
    return this.config.gateway.id;
  }
  get devices() {
    return this.rt.devices;
  }
  get outputs() {
    return this.rt.outputs;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.logger.info({ gateway: this.id, version: VERSION, configVersion: this.version, devices: this.rt.devices.size, buffer: this.store.stats() }, 'starting');
    await this.rt.open(false);
    for (const u of this.uplinks) u.start();
    // the page is for people: if its port is taken the gateway still runs, and says so
    if (this.opts.http !== false) {
      const server = new HttpServer(this);
      try {
        await server.start();
        this.http = server;
        this.logger.info({ url: `http://${this.config.http.bind}:${server.port}/` }, 'status page');
      } catch (e) {
        this.logger.error({ err: (e as Error).message }, `status page not started: ${(e as Error).message}`);
      }
    }
    this.publishConfig();
    // outputs start off, confirmed by the devices: every relay channel, mapped or not
    const stuck = await this.rt.allOff();
    this.safety.reportStuck(stuck, 'start-up');
    this.logger.info({ outputs: this.rt.outputs.actual }, 'outputs off at start-up');
    this.rt.poller.start();
    this.rulesClock.start();
    this.publishState();
  }

  /** Outputs off and read back, buffer flushed as far as the broker allows, everything closed. */
  async stop(reason = 'shutdown'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.rulesClock.stop();
    await this.applier.idle();
    await this.rt.poller.stop();
    if (this.started) {
      const commands = this.engine.allOff(this.clock.mono(), reason);
      this.handle({ events: this.engine.drainEvents(), commands });
      // every relay channel, not only those the rules had on: off and read back
      this.safety.reportStuck(await this.rt.allOff(), 'shutdown');
      await this.rt.outputs.idle();
      this.logger.info({ outputs: this.rt.outputs.actual }, 'outputs off at shutdown');
      for (const l of this.rt.lights) l.setLight('off');
      this.publishState();
      this.batch.flush();
      if (this.uplink?.connected) await this.uplink.flush(2000);
    }
    this.remote?.stop();
    for (const u of this.uplinks) await u.stop();
    await this.http?.stop();
    await this.rt.close();
    this.storage.close();
    this.store.close();
    this.logger.info({ gateway: this.id }, 'stopped');
  }

  /** The effective config, retained on P/config (secrets redacted). */
  publishConfig(): void {
    this.uplink?.publishConfig({ ...redact(this.config), version: this.version });
  }

  // ---------------------------------------------------------------- data path

  /** A reading: the control path at once (outputs, rules), the data path (store, page, aggregates) with its cycle. */
  private onReading(raw: RawReading): void {
    const rt = this.rt, cfg = rt.deviceConfig.get(raw.device), clock = this.clock.recordFlag; // the clock's label as of the reading's ts: a correction may land before its data path runs
    const reading: Reading = { device: raw.device, ts: raw.ms ?? Date.parse(raw.ts), values: raw.values, flags: flagValues(raw.values, cfg?.ranges ?? {}) };
    rt.outputs.onReading(reading);
    // only readings the rules use need an evaluation now; the tick covers time and publishes the state
    if (rt.ruleDevices.has(raw.device)) {
      this.engine.ingest(reading, this.clock.monoOf(reading.ts));
      this.evaluate(false);
    }
    this.batch.hold(() => this.storeReading(reading, clock, raw.ts)); // the data path: with its poll cycle
  }

  private onReadError(device: string, _e: DriverError): void {
    const r = commFailure(device, this.now(), this.rt.metricsOfDevice.get(device) ?? []), clock = this.clock.recordFlag;
    this.batch.hold(() => this.storeReading(r, clock));
  }

  private storeReading(r: Reading, clock: Readonly<Record<string, string>>, iso?: string): void {
    this.latest.observe(r, this.rt.sources);
    const closed = this.aggregator.add(r);
    if (closed.length) this.reports.closed(closed);
    const up = this.rt.report.pass(r); // the uplink's share (report strategies); the rest above saw every poll
    if (up) this.batch.add('telemetry', telemetryBody(up, up.ts === r.ts ? iso : undefined, clock), up);
  }

  /** @internal */
  pumpUplinks(): void {
    for (const u of this.uplinks) u.pumpSoon?.();
  }

  /** Store events (each gets its seq, and `text`: the sentence a person reads, in gateway.locale) and hand them on. */
  record(events: RuleEvent[]): void {
    if (!events.length || (this.stopped && !this.started)) return;
    this.batch.flush(); // readings recorded before these events keep the lower seqs
    const bodies = events.map((e) => JSON.stringify({ ...e, ts: new Date(e.ts).toISOString(), ...this.clock.recordFlag, text: this.view.noteEvent(e, this.loaded.locale) }));
    const { seqs, eviction } = this.storage.appendEvents(bodies);
    events.forEach((e, i) => {
      this.counters.events++;
      const lvl = WARN_EVENTS.has(e.type) ? 'warn' : 'info';
      this.logger[lvl]({ event: e.type, seq: seqs[i], data: { ...e, ts: undefined, type: undefined } }, `event ${e.type}`);
      this.emit('event', { ...e, seq: seqs[i] } satisfies GatewayEvent);
    });
    if (eviction) this.health.overflow(eviction);
    this.pumpUplinks();
    this.publishState();
  }

  /** Run the rules, arm their next deadline; on a heartbeat (rules-clock.ts) also the light, and about once a second the data path's clocks and the state (events and switches publish it at once). */
  evaluate(tick = true): void {
    if (this.stopped) return;
    try {
      const now = this.clock.mono(); // one instant for both: a later reading could pass the deadline named
      this.handle(this.engine.evaluate(now));
      this.rulesClock.arm(this.engine.nextDeadline(now));
    } catch (e) {
      this.safety.rulesFailed(e);
      return;
    }
    this.safety.rulesRan();
    this.counters.evaluations++;
    if (!tick) return;
    const mono = this.clock.mono();
    if (mono - this.lastAggTick >= 750) {
      this.lastAggTick = mono;
      this.dataPath('aggregates', () => {
        const now = this.now();
        const closed = this.aggregator.tick(now);
        if (closed.length) this.reports.closed(closed);
        for (const u of this.uplinks) u.tick?.(now);
      });
      this.storage.tick();
      this.dataPath('state', () => this.publishState());
    }
    this.dataPath('light', () => this.view.updateLight());
  }

  /** @internal Run a data-path job; its failure is logged (once per message), never thrown into the control path. */
  dataPath(what: string, job: () => void): void {
    try {
      job();
    } catch (e) {
      const msg = String(e);
      if (this.lastDataError.get(what) !== msg) this.logger.error({ part: what, err: msg }, `${what}: ${msg}`);
      this.lastDataError.set(what, msg);
    }
  }
  private lastDataError = new Map<string, string>();

  /**
   * The gateway cannot go on (a fatal error): stop polling, switch every relay channel off and
   * read it back. Never throws.
   */
  async failSafe(reason: string): Promise<void> {
    this.stopped = true;
    this.rulesClock.stop();
    await this.safety.failSafe(reason);
  }

  /** Record the engine's events and carry its commands to the outputs. */
  handle({ events, commands }: { events: RuleEvent[]; commands: OutputCommand[] }): void {
    // the relays first: nothing on the data path may delay or skip a switch
    for (const c of commands) {
      void this.rt.outputs.set(c.output, c.on).then(() => this.dataPath('state', () => this.publishState()));
    }
    this.dataPath('events', () => this.record(events));
  }

  /** Set the alert level (remote command): its profile applies from now on, and survives a restart. */
  setAlertLevel(level: Parameters<RulesEngine['setAlertLevel']>[0], why: EventOrigin = {}): void {
    this.engine.setAlertLevel(level, this.clock.mono(), why);
    this.dataPath('alert level', () => this.store.setMeta('alertLevel', level));
    this.evaluate(false); // its deadlines (a spray phase) armed like any other
    this.publishState();
  }

  /** Switch an output on request: every interlock applies (see RulesEngine.request). */
  requestOutput(name: string, on: boolean, opts: { durationS?: number; by?: string; requestId?: string } = {}) {
    const res = this.engine.request(name, on, this.clock.mono(), opts);
    this.handle({ events: this.engine.drainEvents(), commands: [] });
    // the engine queued the command for the next evaluation; run it now
    this.evaluate();
    return res;
  }

  // ---------------------------------------------------------------- state (state-view.ts), reports (reports.ts)

  /** The P/state payload. */
  state() {
    return this.view.state();
  }
  /** GET /api/state. */
  apiState(withHistory = false, locale?: Locale) {
    return this.view.apiState(withHistory, locale);
  }
  /** The running mean since 1 January against the city's target. */
  annualReport(device: string, dayStart: number) {
    return this.reports.annualReport(device, dayStart);
  }
  publishState(): void {
    this.view.publishState();
  }
  /** Send the buffered records of [from, to] again (remote `republish`); how many are still held. */
  republish(from: number, to: number): number {
    return this.uplink?.republish(from, to) ?? 0;
  }
}
