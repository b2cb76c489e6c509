/**
 * The gateway: buses and devices → poller → readings (flagged) → store → uplink, and readings +
 * time → rules → outputs. The store, the uplink and the rules' state live as long as the process;
 * the runtime (buses, devices, poller, outputs) is rebuilt when a new config is applied.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import type { DriverError } from '../drivers/errors.js';
import type { BindingInterface } from '../drivers/transports/link.js';
import type { FirmataBus, FirmataIoFactory, LightPattern } from '../drivers/firmata.js';
import { ConfigError, deepMerge, profileRules, redact, resolveConfig, type ConfigIssue, type LoadedConfig } from './config/load.js';
import { FLOOR_SECTIONS, allowed, floorIssues, siteFloors } from './config/floors.js';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './log.js';
import type { OutputFault } from './outputs.js';
import type { RawReading } from './poller.js';
import { commFailure, flagValues, type Flag, type Reading } from './reading.js';
import { RulesEngine, type OutputCommand, type RuleEvent } from './rules/engine.js';
import { DUST_METRICS } from './rules/decisions.js';
import { Aggregator, periodBounds, type Aggregate } from './aggregates.js';
import { aqi, type AqiStandard } from './aqi.js';
import { Hj212Uplink } from './hj212/uplink.js';
import { HttpServer } from './http.js';
import { RemoteHandler } from './remote.js';
import { Runtime, engineInputs } from './runtime.js';
import { Store, type Eviction } from './store.js';
import { StorageGuard, hint as storageHint, type StorageStatus } from './storage-guard.js';
import { GatewayClock, clockFrom, type Clock, type ClockStep } from './clock.js';
import { MqttUplink } from './uplink/mqtt.js';
import { VERSION } from './version.js';

export { resolveSources } from './runtime.js';

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
  /** Real ms between rule evaluations when no reading arrives. */
  tickMs?: number;
  /** Bus reopen backoff (tests shorten it). */
  reopenMaxMs?: number;
  /** false: no status page (tests that run many gateways) */
  http?: boolean;
}

export interface GatewayEvent extends RuleEvent {
  seq?: number;
}

export interface ConfigChange {
  patch?: unknown;
  config?: unknown;
}
export interface ApplyMeta {
  requestId?: string;
  source?: 'remote' | 'file';
}

export interface ApplyResult {
  ok: boolean;
  version: number;
  errors?: ConfigIssue[];
  rolledBack?: boolean;
}

/** Keys a remote change may not touch: they are the gateway's identity or need a local restart. */
const LOCAL_ONLY: [string, string][] = [
  ['gateway.id', 'the gateway id names its topics; change it in the site file'],
  ['storage.path', 'moving the buffer needs a local restart'],
  ['mqtt.topicPrefix', 'the topic prefix names its topics; change it in the site file'],
  ['mqtt.enabled', 'switching the uplink off remotely would cut the gateway off'],
];
/** Broker connection keys: a change is tried on a second connection before the first is let go. */
const CONNECTION_KEYS = ['url', 'username', 'password', 'ca', 'cert', 'key', 'reconnectMaxS'] as const;
const get = (o: unknown, p: string): unknown => p.split('.').reduce<unknown>((a, k) => (a && typeof a === 'object' ? (a as Record<string, unknown>)[k] : undefined), o);

export class Gateway extends EventEmitter {
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
  private rt: Runtime;
  remote: RemoteHandler | undefined;
  readonly aggregator: Aggregator;
  hj212: Hj212Uplink | undefined;
  /** latest usable value of each source metric, for HJ 212 real-time data */
  private latestBySource: Record<string, { v: number; flag: Flag }> = {};
  /** the last hour of each source metric, for the page's chart */
  private history: Record<string, [number, number][]> = {};
  http: HttpServer | undefined;
  private statsCache: { at: number; value: ReturnType<Store['stats']> & { oldestAgeS: number | null } } | undefined;
  private lastAggTick = -Infinity;
  private tick: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private applying: Promise<unknown> = Promise.resolve();
  readonly startedAt: string;
  readonly counters = { readings: 0, events: 0, evictedTelemetry: 0, evictedEvents: 0 };

  constructor(private readonly opts: GatewayOptions) {
    super();
    this.logger = opts.logger ?? createLogger('dustgate');
    const onStep = (s: ClockStep) => this.clockStepped(s);
    this.clock = opts.now ? clockFrom(opts.now, opts.mono, onStep) : new GatewayClock(Date.now, opts.mono, onStep);
    this.now = () => this.clock.now();
    this.startedAt = new Date(this.now()).toISOString();
    const c0 = opts.loaded.config;
    this.store = new Store({ path: c0.storage.path, maxMB: c0.storage.maxMB, durability: c0.storage.durability });
    this.storage = new StorageGuard(this.store, { now: this.now, mono: () => this.clock.mono(), logger: this.logger });
    this.storage.on('change', (st: StorageStatus) => this.storageChanged(st));
    this.loaded = this.pickConfig(opts.loaded);
    const c = this.loaded.config;
    this.config = c;
    this.rt = this.buildRuntime(c);
    this.engine = new RulesEngine({ rules: c.rules, outputs: c.outputs, inputs: engineInputs(c), sources: this.rt.sources, timezone: this.loaded.timezone }, this.clock.mono(), {
      wallOf: (t) => this.clock.wallOf(t),
    });
    this.aggregator = new Aggregator(this.loaded.timezone);
    const level = this.store.meta('alertLevel');
    if (level) {
      this.engine.setAlertLevel(level as never, this.clock.mono(), { by: 'restored' });
      this.engine.drainEvents();
    }
    if (c.hj212.enabled)
      this.hj212 = new Hj212Uplink({
        cfg: c.hj212,
        mn: c.hj212.mn || c.gateway.id,
        timeZone: this.loaded.timezone,
        store: this.store,
        now: this.now,
        logger: this.logger,
        sources: this.rt.sources,
        latest: () => this.latestBySource,
      });
    if (c.mqtt.enabled) {
      this.remote = new RemoteHandler(this);
      this.uplink = this.makeUplink(c);
    }
    for (const w of this.loaded.warnings) this.logger.warn({ path: w.path }, `config: ${w.path}: ${w.message}`);
  }

  /**
   * The config to run: the site file, unless remote changes were applied on top of this very file
   * (same hash), in which case the latest of them. Every start from a new file is a new version.
   */
  private pickConfig(fromFile: LoadedConfig): LoadedConfig {
    const baseHash = fromFile.fileHash ?? createHash('sha256').update(JSON.stringify(fromFile.raw)).digest('hex');
    const latest = this.store.latestConfig();
    if (latest && latest.baseHash === baseHash) {
      try {
        const loaded = resolveConfig(JSON.parse(latest.config));
        this.version = latest.version;
        if (latest.source !== 'file') this.logger.info({ version: latest.version, source: latest.source }, 'running the last remotely applied config');
        return { ...loaded, fileHash: baseHash };
      } catch (e) {
        this.logger.warn({ version: latest.version, err: (e as Error).message }, 'the stored config no longer validates; using the site file');
      }
    }
    try {
      this.version = this.store.addConfigVersion({ source: 'file', baseHash, config: JSON.stringify(fromFile.raw) });
    } catch (e) {
      // a store that cannot write does not keep the gateway from running its rules
      this.version = (latest?.version ?? 0) + 1;
      this.logger.error({ err: (e as Error).message }, `config version ${this.version} not saved: ${(e as Error).message}`);
    }
    return { ...fromFile, fileHash: baseHash };
  }

  private makeUplink(c: Config): MqttUplink {
    const up = new MqttUplink({ mqtt: c.mqtt, gatewayId: c.gateway.id, store: this.store, logger: this.logger, version: VERSION, startedAt: this.startedAt });
    const remote = this.remote!;
    up.on('connect', () => up.subscribe(remote.topics()));
    up.on('message', (topic: string, payload: Buffer) => {
      if (up !== this.uplink) return; // a replaced uplink's last messages
      try {
        remote.receive(topic, payload);
      } catch (e) {
        this.logger.error({ topic, err: String(e) }, 'remote message failed');
      }
    });
    return up;
  }

  /**
   * Connect with new broker settings before letting go of the old ones: the new uplink must be
   * accepted by the broker within `waitMs`, else it is dropped and the old one stays.
   */
  private async trySwitchUplink(c: Config, waitMs = 15_000): Promise<ConfigIssue | undefined> {
    const old = this.uplink;
    let fresh: MqttUplink;
    try {
      fresh = this.makeUplink(c);
      fresh.start();
    } catch (e) {
      return { path: 'mqtt', message: (e as Error).message };
    }
    const outcome = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(`no connection within ${waitMs / 1000} s`), waitMs);
      fresh.once('connect', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      fresh.once('refused', (why: string) => {
        clearTimeout(timer);
        resolve(why);
      });
    });
    if (outcome !== undefined) {
      await fresh.stop();
      return { path: 'mqtt', message: `the new broker settings did not work (${outcome}); the old ones stay` };
    }
    this.uplink = fresh;
    await old?.stop({ quiet: true });
    this.lastStateKey = ''; // the new connection gets the state at the next publish
    return undefined;
  }

  private buildRuntime(c: Config, reuse?: Map<string, FirmataBus>): Runtime {
    return new Runtime(
      c,
      { binding: this.opts.binding, firmataIo: this.opts.firmataIo, reopenMaxMs: this.opts.reopenMaxMs, now: this.now, mono: () => this.clock.mono(), logger: this.logger, reuse },
      {
        onReading: (r) => this.onReading(r),
        onReadError: (id, e) => this.onReadError(id, e),
        onStatus: (device, status) => this.deviceStatus(device, status),
        onFault: (f) => this.outputFault(f),
      },
    );
  }

  get id(): string {
    return this.config.gateway.id;
  }
  get devices() {
    return this.rt.devices;
  }
  get buses() {
    return this.rt.buses;
  }
  get outputs() {
    return this.rt.outputs;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.logger.info({ gateway: this.id, version: VERSION, configVersion: this.version, devices: this.rt.devices.size, buffer: this.store.stats() }, 'starting');
    await this.rt.open(false);
    this.uplink?.start();
    this.hj212?.start();
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
    this.reportStuck(stuck, 'start-up');
    this.logger.info({ outputs: this.rt.outputs.actual }, 'outputs off at start-up');
    this.rt.poller.start();
    this.tick = setInterval(() => this.evaluate(), this.opts.tickMs ?? 250);
    this.publishState();
  }

  /** Outputs off and read back, buffer flushed as far as the broker allows, everything closed. */
  async stop(reason = 'shutdown'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tick) clearInterval(this.tick);
    await this.applying.catch(() => undefined);
    await this.rt.poller.stop();
    if (this.started) {
      const commands = this.engine.allOff(this.clock.mono(), reason);
      this.handle({ events: this.engine.drainEvents(), commands });
      // every relay channel, not only those the rules had on: off and read back
      this.reportStuck(await this.rt.allOff(), 'shutdown');
      await this.rt.outputs.idle();
      this.logger.info({ outputs: this.rt.outputs.actual }, 'outputs off at shutdown');
      for (const l of this.rt.lights) l.setLight('off');
      this.publishState();
      if (this.uplink?.connected) await this.uplink.flush(2000);
    }
    this.remote?.stop();
    await this.uplink?.stop();
    await this.hj212?.stop();
    await this.http?.stop();
    await this.rt.close();
    this.storage.close();
    this.store.close();
    this.logger.info({ gateway: this.id }, 'stopped');
  }

  // ---------------------------------------------------------------- config changes

  publishConfig(): void {
    this.uplink?.publishConfig({ ...redact(this.config), version: this.version });
  }

  /**
   * Validate and apply a new site config (a patch deep-merged into the current one, or a whole
   * one) while running: readings keep their seq, the rules keep their state. If the new config
   * cannot start (a bus does not open) the old one is restored. Applied one at a time.
   */
  applyConfig(change: ConfigChange, meta: ApplyMeta = {}): Promise<ApplyResult> {
    return this.applyConfigs([{ change, meta }]).then((r) => r[0]!);
  }

  /**
   * Several changes at once (remote messages that queued up while one was applied): each is
   * validated on top of the ones before it, and the valid ones go live together, as one version.
   * A change that makes no difference is answered with the running version and makes none.
   */
  applyConfigs(items: { change: ConfigChange; meta: ApplyMeta }[]): Promise<ApplyResult[]> {
    const run = this.applying.then(() => this.doApplyMany(items));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async doApplyMany(items: { change: ConfigChange; meta: ApplyMeta }[]): Promise<ApplyResult[]> {
    const results: ApplyResult[] = [];
    let next: LoadedConfig | undefined;
    const accepted: number[] = [];
    items.forEach(({ change, meta }, i) => {
      const v = this.validateChange(next?.raw ?? this.loaded.raw, change, meta);
      if ('errors' in v) results[i] = { ok: false, version: this.version, errors: v.errors };
      else {
        next = v;
        accepted.push(i);
      }
    });
    if (!next) return results;
    const metas = accepted.map((i) => items[i]!.meta);
    const requestIds = metas.map((m) => m.requestId).filter((x): x is string => !!x);
    const meta: ApplyMeta = { source: metas.at(-1)!.source, requestId: requestIds.length ? requestIds.join(',').slice(0, 512) : undefined };
    const same = JSON.stringify(next.raw) === JSON.stringify(this.loaded.raw);
    const res = same ? { ok: true, version: this.version } : await this.doApply(next, meta);
    for (const i of accepted) results[i] = res;
    return results;
  }

  /** A change on top of `baseRaw`: the new config, or why not (same checks as a site file, plus the remote limits). */
  private validateChange(baseRaw: Record<string, unknown>, change: ConfigChange, meta: ApplyMeta): LoadedConfig | { errors: ConfigIssue[] } {
    if (this.stopped) return { errors: [{ path: '', message: 'the gateway is stopping' }] };
    let raw: unknown;
    if (change.config !== undefined) raw = change.config;
    else if (change.patch !== undefined) {
      if (typeof change.patch !== 'object' || change.patch === null || Array.isArray(change.patch)) return { errors: [{ path: 'patch', message: 'expected an object of changes' }] };
      raw = deepMerge(baseRaw, change.patch);
    } else return { errors: [{ path: '', message: 'expected "patch" or "config"' }] };
    let next: LoadedConfig;
    try {
      next = resolveConfig(raw);
    } catch (e) {
      if (e instanceof ConfigError) return { errors: e.issues };
      return { errors: [{ path: '', message: (e as Error).message }] };
    }
    if (meta.source !== 'file') {
      const locked = LOCAL_ONLY.filter(([p]) => JSON.stringify(get(next.config, p)) !== JSON.stringify(get(this.config, p))).map(([path, message]) => ({ path, message: `cannot be changed remotely: ${message}` }));
      if (locked.length) return { errors: locked };
      // the regulation's floors: a remote change may make a rule stricter, never looser (SPEC §12)
      const site = this.opts.loaded.config.rules;
      const flags = FLOOR_SECTIONS.filter((sec) => allowed(next.config.rules, sec) !== allowed(site, sec)).map((sec) => ({
        path: `rules.${sec}.allowBelowRegulation`,
        message: 'can only be set in the site file on the box, not remotely',
      }));
      const floors = floorIssues(next.config.rules, siteFloors(next.floors, site), { honourFlags: false, profiles: profileRules(next.config.rules) });
      if (flags.length || floors.length) return { errors: [...flags, ...floors] };
    }
    return next;
  }

  private async doApply(next: LoadedConfig, meta: ApplyMeta): Promise<ApplyResult> {
    const refuse = (errors: ConfigIssue[]): ApplyResult => ({ ok: false, version: this.version, errors });
    if (this.stopped) return refuse([{ path: '', message: 'the gateway is stopping' }]);
    // only rules (thresholds, alert profiles) changed: the runtime and its open lines stay as they are
    const hardware = (c: Config) => JSON.stringify([c.buses, c.devices, c.outputs, c.inputs, c.sources]);
    const mqttChanged0 = this.uplink && CONNECTION_KEYS.some((k) => JSON.stringify(next.config.mqtt[k]) !== JSON.stringify(this.config.mqtt[k]));
    if (hardware(next.config) === hardware(this.config) && !mqttChanged0) {
      this.loaded = { ...next, fileHash: this.loaded.fileHash };
      this.config = next.config;
      this.engine.configure({ rules: next.config.rules, outputs: next.config.outputs, inputs: engineInputs(next.config), sources: this.rt.sources, timezone: next.timezone }, this.clock.mono());
      return this.applied(next, meta);
    }
    // swap the runtime: stop the old one (its ports must be free), start the new one strictly
    const old = this.rt;
    const wanted = Object.fromEntries(Object.keys(next.config.outputs).map((n) => [n, this.engine.outputWanted(n)]));
    let fresh: Runtime;
    // an open Firmata board whose bus is unchanged is handed over, not reopened (an Arduino resets on open)
    const boards = old.firmataBuses();
    try {
      fresh = this.buildRuntime(next.config, boards);
    } catch (e) {
      return refuse([{ path: 'buses', message: (e as Error).message }]);
    }
    // a channel that is on and loses its mapping is switched off (and read back) on the old runtime first
    const unmapped = await this.switchOffUnmapped(old, next.config, meta.requestId);
    await old.close(new Set(boards.values()));
    /** Back to the running config (its boards still open). */
    const rollBack = async (): Promise<void> => {
      const back = this.buildRuntime(this.config, boards);
      this.rt = back;
      await back.open(false);
      back.adopt();
      await this.closeUnused(boards, back);
      back.poller.start();
      void this.reassert(back, wanted);
    };
    try {
      await fresh.open(true);
    } catch (e) {
      const issues = (e as { issues?: ConfigIssue[] }).issues ?? [{ path: '', message: (e as Error).message }];
      this.logger.warn({ requestId: meta.requestId, issues }, 'new config cannot start; rolled back');
      await rollBack();
      return { ...refuse(issues), rolledBack: true };
    }
    const mqttChanged = this.uplink && CONNECTION_KEYS.some((k) => JSON.stringify(next.config.mqtt[k]) !== JSON.stringify(this.config.mqtt[k]));
    if (mqttChanged) {
      const problem = await this.trySwitchUplink(next.config);
      if (problem) {
        this.logger.warn({ requestId: meta.requestId, problem: problem.message }, 'new broker settings failed; rolled back');
        await fresh.close();
        await rollBack();
        return { ...refuse([problem]), rolledBack: true };
      }
    }
    this.rt = fresh;
    fresh.adopt();
    await this.closeUnused(boards, fresh);
    this.loaded = { ...next, fileHash: this.loaded.fileHash };
    this.config = next.config;
    this.engine.configure({ rules: next.config.rules, outputs: next.config.outputs, inputs: engineInputs(next.config), sources: fresh.sources, timezone: next.timezone }, this.clock.mono());
    fresh.poller.start();
    void this.reassert(fresh, wanted);
    this.record(unmapped);
    return this.applied(next, meta);
  }

  /** A config went live: its version, the log, P/config and P/state. */
  private applied(next: LoadedConfig, meta: ApplyMeta): ApplyResult {
    this.dataPath('config versions', () => {
      this.version = this.store.addConfigVersion({ source: meta.source ?? 'remote', requestId: meta.requestId, baseHash: this.loaded.fileHash ?? '', config: JSON.stringify(next.raw) });
    });
    this.logger.info({ version: this.version, requestId: meta.requestId }, 'config applied');
    this.publishConfig();
    this.publishState();
    return { ok: true, version: this.version };
  }

  /**
   * Outputs of the running config whose channel is gone from the new one (output deleted, moved to
   * another channel, or its device or bus changed): each that is on, or not known to be off, is
   * switched off and read back before the new config goes live. Returns their events.
   */
  private async switchOffUnmapped(old: Runtime, next: Config, requestId?: string): Promise<RuleEvent[]> {
    /** The hardware an output switches: the line, the unit (or the board's pin) and the channel. */
    const where = (c: Config, name: string): string | undefined => {
      const o = c.outputs[name];
      const d = o && c.devices.find((x) => x.id === o.device);
      const b = d && c.buses.find((x) => x.id === d.bus);
      if (!o || !d || !b) return undefined;
      const { id: _id, timeoutMs: _t, ...line } = b;
      if (d.driver === 'firmata-io') return JSON.stringify([line, 'pin', d.pins?.[o.channel - 1] ?? null]);
      return JSON.stringify([line, d.driver, d.unit ?? null, o.channel]);
    };
    const events: RuleEvent[] = [];
    await Promise.all(
      Object.keys(this.config.outputs).map(async (name) => {
        if (where(this.config, name) === where(next, name)) return;
        const was = old.outputs.actual[name];
        if (was === 'off' && !this.engine.outputWanted(name)) return;
        const o = this.config.outputs[name]!;
        const reason = !next.outputs[name] ? 'deleted' : next.outputs[name]!.device !== o.device || next.outputs[name]!.channel !== o.channel ? 'moved' : 'device_changed';
        const got = await old.outputs.set(name, false);
        this.logger.warn({ output: name, device: o.device, channel: o.channel, reason, readBack: got }, `output ${name} (${o.device} channel ${o.channel}) ${reason} by a config change: switched off, read back ${got}`);
        events.push({ type: 'output_unmapped', ts: this.now(), output: name, device: o.device, channel: o.channel, reason, was: was ?? 'unknown', state: got, ...(requestId ? { requestId } : {}) });
      }),
    );
    return events;
  }

  /** Relay channels that did not confirm off (start-up, shutdown, fail-safe): an output_fault each. */
  private reportStuck(stuck: { device: string; channel: number; actual: 'on' | 'unknown' }[], when: string): void {
    if (!stuck.length) return;
    this.logger.warn({ channels: stuck, when }, `relay channels not confirmed off at ${when}`);
    this.record(stuck.map((c) => ({ type: 'output_fault', ts: this.now(), output: `${c.device}.ch${c.channel}`, device: c.device, channel: c.channel, wanted: 'off', actual: c.actual, reason: 'no_confirmation' })));
  }

  /** Close the handed-over boards that the new runtime did not take (its config dropped or changed them). */
  private async closeUnused(boards: Map<string, FirmataBus>, rt: Runtime): Promise<void> {
    const taken = new Set(rt.buses.values());
    await Promise.all([...boards.values()].filter((b) => !taken.has(b)).map((b) => b.stop()));
  }

  /** Put the outputs of a fresh runtime in the states the rules want. */
  private async reassert(rt: Runtime, wanted: Record<string, boolean>): Promise<void> {
    await Promise.all(Object.keys(rt.config.outputs).map((n) => rt.outputs.set(n, wanted[n] ?? false)));
    this.publishState();
  }

  // ---------------------------------------------------------------- data path

  /** A reading: the control path first (outputs, rules), then the data path (store, page, aggregates). */
  private onReading(raw: RawReading): void {
    const rt = this.rt;
    const cfg = rt.deviceConfig.get(raw.device);
    const reading: Reading = { device: raw.device, ts: Date.parse(raw.ts), values: raw.values, flags: flagValues(raw.values, cfg?.ranges ?? {}) };
    rt.outputs.onReading(reading);
    // only readings the rules use (sources and inputs) need an evaluation now; the tick covers time
    if (rt.ruleDevices.has(raw.device)) {
      this.engine.ingest(reading, this.clock.monoOf(reading.ts));
      this.evaluate();
    }
    this.storeReading(reading);
  }

  private onReadError(device: string, _e: DriverError): void {
    this.storeReading(commFailure(device, this.now(), this.rt.metricsOfDevice.get(device) ?? []));
  }

  private storeReading(r: Reading): void {
    for (const [metric, dev] of Object.entries(this.rt.sources)) {
      if (dev !== r.device) continue;
      const v = r.values[metric];
      const flag = r.flags[metric];
      if (v !== undefined && flag) {
        this.latestBySource[metric] = { v, flag };
        const h = (this.history[metric] ??= []);
        h.push([r.ts, v]);
        while (h.length && h[0]![0] < r.ts - 3600_000) h.shift();
      } else if (flag) delete this.latestBySource[metric];
    }
    const closed = this.aggregator.add(r);
    if (closed.length) this.onAggregates(closed);
    const body = JSON.stringify({ ts: new Date(r.ts).toISOString(), device: r.device, values: r.values, flags: r.flags });
    const { seq, eviction } = this.storage.appendTelemetry(body);
    this.counters.readings++;
    this.emit('reading', { ...r, seq });
    if (eviction) this.overflow(eviction);
    this.uplink?.pumpSoon();
  }

  /** The store failed or writes again: an event (held in memory until it can be stored), the log, P/state. */
  private storageChanged(st: StorageStatus): void {
    if (st.state === 'failing')
      this.record([{ type: 'storage_error', ts: this.now(), code: st.code, message: st.message, path: this.config.storage.path, hint: storageHint(st.code!) }]);
    else this.record([{ type: 'storage_recovered', ts: this.now(), failingSince: st.since, droppedTelemetry: st.droppedTelemetry, droppedEvents: st.droppedEvents }]);
    this.publishState();
  }

  /** The system clock stepped: an event; durations are unaffected (they run on the monotonic clock). */
  private clockStepped(s: ClockStep): void {
    this.logger.warn({ deltaS: s.deltaMs / 1000, action: s.action }, `system clock stepped ${s.deltaMs > 0 ? 'forward' : 'back'} by ${Math.abs(s.deltaMs / 1000)} s (${s.action === 'held' ? 'timestamps run on until it catches up' : 'followed'})`);
    // recorded on the next turn: the step is noticed inside a now() call
    setImmediate(() => this.record([{ type: 'clock_step', ts: this.now(), deltaS: Math.round(s.deltaMs / 100) / 10, action: s.action }]));
  }

  private overflow(ev: Eviction): void {
    this.counters.evictedTelemetry += ev.telemetry;
    this.counters.evictedEvents += ev.events;
    this.logger.warn({ evicted: ev, total: this.store.evicted }, 'buffer full: oldest records evicted');
    this.record([{ type: 'buffer_overflow', ts: this.now(), evictedTelemetry: ev.telemetry, evictedEvents: ev.events, totalEvicted: this.store.evicted.telemetry + this.store.evicted.events, maxMB: this.config.storage.maxMB }]);
  }

  /** Store events (each gets its seq) and hand them on. */
  record(events: RuleEvent[]): void {
    if (!events.length || (this.stopped && !this.started)) return;
    const bodies = events.map((e) => JSON.stringify({ ...e, ts: new Date(e.ts).toISOString() }));
    const { seqs, eviction } = this.storage.appendEvents(bodies);
    events.forEach((e, i) => {
      this.counters.events++;
      const lvl = e.type === 'output_fault' || e.type === 'sprinkler_blocked' || e.type === 'buffer_overflow' || e.type === 'remote_refused' ? 'warn' : 'info';
      this.logger[lvl]({ event: e.type, seq: seqs[i], data: { ...e, ts: undefined, type: undefined } }, `event ${e.type}`);
      this.emit('event', { ...e, seq: seqs[i] } satisfies GatewayEvent);
    });
    if (eviction) this.overflow(eviction);
    this.uplink?.pumpSoon();
    this.publishState();
  }

  /** Run the rules (and, once a second, the clocks of the data path). */
  private evaluate(): void {
    if (this.stopped) return;
    try {
      this.handle(this.engine.evaluate(this.clock.mono()));
    } catch (e) {
      this.rulesFailed(e);
      return;
    }
    this.rulesFailing = false;
    const mono = this.clock.mono();
    if (mono - this.lastAggTick >= 1000) {
      this.lastAggTick = mono;
      this.dataPath('aggregates', () => {
        const now = this.now();
        const closed = this.aggregator.tick(now);
        if (closed.length) this.onAggregates(closed);
        this.hj212?.tick(now);
      });
      this.storage.tick();
    }
    this.dataPath('state', () => {
      this.publishState();
      this.updateLight();
    });
  }

  private rulesFailing = false;
  private lastFailOff = -Infinity;
  /**
   * The rules could not run: every output off and read back (fail safe), again every 5 s while it
   * lasts (not on every tick: the line stays free for polling); the rules are tried on every tick.
   */
  private rulesFailed(e: unknown): void {
    if (!this.rulesFailing) this.logger.error({ err: String(e), stack: (e as Error).stack }, `rules failed: ${String(e)}; every output off`);
    this.rulesFailing = true;
    const mono = this.clock.mono();
    if (mono - this.lastFailOff < 5000) return;
    this.lastFailOff = mono;
    void this.rt.allOff().then((stuck) => this.reportStuck(stuck, 'rules failure'));
  }

  /** Run a data-path job; its failure is logged (once per message), never thrown into the control path. */
  private dataPath(what: string, job: () => void): void {
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
   * read it back, then close what can be closed. Never throws.
   */
  async failSafe(reason: string): Promise<void> {
    this.logger.fatal({ reason }, `fail-safe: ${reason}; switching every output off`);
    this.stopped = true;
    if (this.tick) clearInterval(this.tick);
    try {
      await this.rt.poller.stop();
    } catch {
      /* going down anyway */
    }
    try {
      const stuck = await this.rt.allOff();
      this.logger.fatal({ outputs: this.rt.outputs.actual, notConfirmed: stuck }, 'fail-safe: outputs off');
      for (const l of this.rt.lights) l.setLight('off');
    } catch (e) {
      this.logger.fatal({ err: String(e) }, 'fail-safe: switching off failed');
    }
  }

  /**
   * Closed aggregates: kept in their own table (35+ days, for HJ 212 back-fill), published on
   * P/aggregates one message per device and period, with AQI for hours and days.
   */
  private onAggregates(list: Aggregate[]): void {
    this.dataPath('aggregates store', () => this.store.saveAggregates(list.map((a) => ({ ...a, start: new Date(a.start).toISOString() }))));
    this.dataPath('hj212', () => this.hj212?.onAggregates(list));
    const groups = new Map<string, Aggregate[]>();
    for (const a of list) {
      const k = `${a.period}|${a.start}|${a.device}`;
      groups.set(k, [...(groups.get(k) ?? []), a]);
    }
    for (const g of groups.values()) {
      const { period, start, device } = g[0]!;
      const metrics = Object.fromEntries(g.map((a) => [a.metric, { mean: a.mean === null ? null : Math.round(a.mean * 100) / 100, min: a.min, max: a.max, count: a.count, flag: a.flag, valid: a.valid }]));
      const conc: Record<string, number> = {};
      for (const a of g) if ((a.metric === 'pm10' || a.metric === 'pm25') && a.valid && a.mean !== null) conc[a.metric] = a.mean;
      const msg: Record<string, unknown> = { gateway: this.id, period, start: new Date(start).toISOString(), device, metrics };
      if (period !== 'minute') msg.aqi = aqi(conc, this.config.aqi.standard as AqiStandard);
      if (period === 'day') msg.annual = this.annualReport(device, start);
      this.emit('aggregates', msg);
      this.uplink?.publish('aggregates', JSON.stringify(msg));
    }
    if (list.some((a) => a.period === 'day')) this.dataPath('aggregates prune', () => this.store.pruneAggregates(new Date(this.now() - 40 * 86_400_000).toISOString()));
  }

  /** The running mean of valid daily means since 1 January (local) against the city's annual target. */
  annualReport(device: string, dayStart: number) {
    const year = new Intl.DateTimeFormat('en-GB', { timeZone: this.loaded.timezone, year: 'numeric' }).format(dayStart);
    const jan1 = periodBounds('day', Date.parse(`${year}-01-01T12:00:00Z`), this.loaded.timezone).start;
    const days = this.store.aggregates('day', new Date(jan1).toISOString(), new Date(dayStart).toISOString(), device);
    const targets = this.loaded.preset.cityTargets as Record<string, Record<string, { pm10: number; pm25: number }>> | undefined;
    const city = this.config.gateway.site.city;
    const target = targets ? Object.entries(targets).filter(([k]) => k.startsWith('table')).map(([, t]) => t[city]).find(Boolean) : undefined;
    const out: Record<string, unknown> = { city, since: new Date(jan1).toISOString() };
    for (const m of ['pm10', 'pm25'] as const) {
      const valid = days.filter((d) => d.metric === m && d.flag !== 'B' && d.flag !== 'D' && d.mean !== null && d.count >= 20);
      if (!valid.length) continue;
      const mean = valid.reduce((a, d) => a + d.mean!, 0) / valid.length;
      out[m] = { mean: Math.round(mean * 10) / 10, days: valid.length, target: target?.[m] ?? null, ratio: target ? Math.round((mean / target[m]) * 1000) / 1000 : null };
    }
    return out;
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
  setAlertLevel(level: Parameters<RulesEngine['setAlertLevel']>[0], why: Record<string, unknown> = {}): void {
    this.engine.setAlertLevel(level, this.clock.mono(), why);
    this.dataPath('alert level', () => this.store.setMeta('alertLevel', level));
    this.handle(this.engine.evaluate(this.clock.mono()));
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

  private lastStatus = new Map<string, string>();
  /** A device came or went: an event; one that comes back gets its outputs put where they should be. */
  private deviceStatus(device: string, status: string): void {
    const before = this.lastStatus.get(device);
    this.lastStatus.set(device, status);
    this.record([{ type: 'device_status', ts: this.now(), device, status }]);
    if (status === 'online' && before === 'offline' && this.started && !this.stopped) this.rt.outputs.restore(device);
    this.updateLight();
  }

  /**
   * The status light on every board that has one: fast blink during a dust alarm, slow blink while
   * a device is offline or the broker is unreachable, steady on otherwise (off once stopped).
   */
  lightPattern(): LightPattern {
    if (this.stopped || !this.started) return 'off';
    const alarms = this.engine.snapshot(this.clock.mono()).alarms;
    if (DUST_METRICS.some((m) => alarms[m] && alarms[m] !== 'none')) return 'fast';
    if ([...this.rt.devices.values()].some((d) => d.status === 'offline')) return 'slow';
    if (this.uplink && !this.uplink.connected) return 'slow';
    return 'on';
  }

  private updateLight(): void {
    if (!this.rt.lights.length) return;
    const p = this.lightPattern();
    for (const l of this.rt.lights) l.setLight(p);
  }

  private outputFault(f: OutputFault): void {
    this.record([{ type: 'output_fault', ts: this.now(), ...f }]);
  }

  // ---------------------------------------------------------------- state

  state() {
    const devices: Record<string, string> = {};
    for (const [id, d] of this.rt.devices) devices[id] = d.status;
    return { ts: new Date(this.now()).toISOString(), ...this.engine.snapshot(this.clock.mono()), outputs: { ...this.rt.outputs.actual }, devices, storage: this.storage.status().state };
  }

  /** Buffer figures, at most once a second (the page and /metrics ask often). */
  bufferStats() {
    const now = this.clock.mono();
    if (!this.statsCache || now - this.statsCache.at > 1000) {
      try {
        const st = this.store.stats();
        this.statsCache = { at: now, value: { ...st, oldestAgeS: st.oldestTs ? Math.max(0, Math.round((this.now() - Date.parse(st.oldestTs)) / 1000)) : null } };
      } catch (e) {
        // a store that cannot be read: the page shows the last figures (and the storage state says why)
        this.logger.warn({ err: (e as Error).message }, 'buffer figures not readable');
        if (!this.statsCache) throw e;
        this.statsCache.at = now;
      }
    }
    return this.statsCache.value;
  }

  /** GET /api/state: rule state, values, device health, buffer and links (and the last hour). */
  apiState(withHistory = false) {
    const devices: Record<string, unknown> = {};
    for (const [id, d] of this.rt.devices) devices[id] = { status: d.status, driver: d.definition.name, counters: d.counters };
    const b = this.bufferStats();
    return {
      gateway: this.id,
      version: VERSION,
      configVersion: this.version,
      now: new Date(this.now()).toISOString(),
      state: this.state(),
      latest: this.latestBySource,
      devices,
      buffer: { telemetry: b.telemetry, events: b.events, oldestTs: b.oldestTs, oldestAgeS: b.oldestAgeS, bytes: b.bytes, capBytes: b.capBytes, fileBytes: b.fileBytes, evicted: b.evicted },
      storage: this.storage.status(),
      links: {
        mqtt: this.uplink ? (this.uplink.connected ? 'connected' : 'down') : null,
        hj212: this.hj212 ? (this.hj212.isConnected ? 'connected' : 'down') : null,
      },
      /** What the boards' status lights show (null: no board has one). */
      light: this.rt.lights.length ? this.lightPattern() : null,
      ...(withHistory ? { history: this.history } : {}),
    };
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
