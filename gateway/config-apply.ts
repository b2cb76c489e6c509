/**
 * Applying a config while running (SPEC §8): a change is validated (the schema, what may not change
 * remotely, the regulation's floors), then goes live: rules-only changes reconfigure the engine; any
 * other swaps the runtime (buses, devices, poller, outputs), rolled back if the new one cannot start.
 * A relay channel that loses its mapping is switched off and read back first; new broker settings
 * are tried on a second connection before the first is let go. Changes are applied one batch at a time.
 */
import { createHash } from 'node:crypto';
import type { FirmataBus } from '../drivers/firmata.js';
import type { Clock } from './clock.js';
import { ConfigError, deepMerge, profileRules, resolveConfig, type ConfigIssue, type LoadedConfig } from './config/load.js';
import { FLOOR_SECTIONS, allowed, floorIssues, siteFloors } from './config/floors.js';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import type { RulesEngine, RuleEvent } from './rules/engine.js';
import { engineInputs, type Runtime } from './runtime.js';
import type { Store } from './store.js';
import type { MqttUplink } from './uplink/mqtt.js';

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
const CONNECTION_KEYS = ['url', 'username', 'password', 'ca', 'cert', 'key', 'reconnectMaxS', 'requireSubscriber'] as const;
const get = (o: unknown, p: string): unknown => p.split('.').reduce<unknown>((a, k) => (a && typeof a === 'object' ? (a as Record<string, unknown>)[k] : undefined), o);

/**
 * The config to run: the site file, unless remote changes were applied on top of this very file
 * (same hash), in which case the latest of them. Every start from a new file is a new version.
 */
export function startingConfig(store: Store, fromFile: LoadedConfig, logger: Logger): { loaded: LoadedConfig; version: number } {
  const baseHash = fromFile.fileHash ?? createHash('sha256').update(JSON.stringify(fromFile.raw)).digest('hex');
  const latest = store.versions.latest();
  if (latest && latest.baseHash === baseHash) {
    try {
      const loaded = resolveConfig(JSON.parse(latest.config));
      if (latest.source !== 'file') logger.info({ version: latest.version, source: latest.source }, 'running the last remotely applied config');
      return { loaded: { ...loaded, fileHash: baseHash }, version: latest.version };
    } catch (e) {
      logger.warn({ version: latest.version, err: (e as Error).message }, 'the stored config no longer validates; using the site file');
    }
  }
  let version: number;
  try {
    version = store.versions.add({ source: 'file', baseHash, config: JSON.stringify(fromFile.raw) });
  } catch (e) {
    // a store that cannot write does not keep the gateway from running its rules
    version = (latest?.version ?? 0) + 1;
    logger.error({ err: (e as Error).message }, `config version ${version} not saved: ${(e as Error).message}`);
  }
  return { loaded: { ...fromFile, fileHash: baseHash }, version };
}

/** What applying a config reads and replaces in the gateway. */
export interface ApplyHost {
  rt: Runtime;
  loaded: LoadedConfig;
  config: Config;
  version: number;
  uplink: MqttUplink | undefined;
  /** the site file the gateway was started with (its floors and flags) */
  readonly siteFile: LoadedConfig;
  readonly stopping: boolean;
  readonly engine: RulesEngine;
  readonly batch: { setCommitMs(ms: number): void };
  readonly store: Store;
  readonly logger: Logger;
  readonly clock: Clock;
  now(): number;
  buildRuntime(c: Config, reuse?: Map<string, FirmataBus>): Runtime;
  makeUplink(c: Config): MqttUplink;
  record(events: RuleEvent[]): void;
  publishConfig(): void;
  publishState(): void;
  readonly started: boolean;
  /** run the rules now (a new config's limits apply at once) */
  evaluate(): void;
  dataPath(what: string, job: () => void): void;
  /** P/state goes out again on a new connection */
  readonly view: { forgetPublished(): void };
}

export class ConfigApplier {
  private applying: Promise<unknown> = Promise.resolve();

  constructor(private readonly gw: ApplyHost) {}

  /** Resolves when no change is being applied. */
  idle(): Promise<unknown> {
    return this.applying.catch(() => undefined);
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
      const v = this.validateChange(next?.raw ?? this.gw.loaded.raw, change, meta);
      if ('errors' in v) results[i] = { ok: false, version: this.gw.version, errors: v.errors };
      else {
        next = v;
        accepted.push(i);
      }
    });
    if (!next) return results;
    const metas = accepted.map((i) => items[i]!.meta);
    const requestIds = metas.map((m) => m.requestId).filter((x): x is string => !!x);
    const meta: ApplyMeta = { source: metas.at(-1)!.source, requestId: requestIds.length ? requestIds.join(',').slice(0, 512) : undefined };
    const same = JSON.stringify(next.raw) === JSON.stringify(this.gw.loaded.raw);
    const res = same ? { ok: true, version: this.gw.version } : await this.doApply(next, meta);
    for (const i of accepted) results[i] = res;
    return results;
  }

  /** A change on top of `baseRaw`: the new config, or why not (same checks as a site file, plus the remote limits). */
  private validateChange(baseRaw: Record<string, unknown>, change: ConfigChange, meta: ApplyMeta): LoadedConfig | { errors: ConfigIssue[] } {
    if (this.gw.stopping) return { errors: [{ path: '', message: 'the gateway is stopping' }] };
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
      const locked = LOCAL_ONLY.filter(([p]) => JSON.stringify(get(next.config, p)) !== JSON.stringify(get(this.gw.config, p))).map(([path, message]) => ({ path, message: `cannot be changed remotely: ${message}` }));
      if (locked.length) return { errors: locked };
      // the regulation's floors: a remote change may make a rule stricter, never looser (SPEC §12)
      const site = this.gw.siteFile.config.rules;
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
    const refuse = (errors: ConfigIssue[]): ApplyResult => ({ ok: false, version: this.gw.version, errors });
    if (this.gw.stopping) return refuse([{ path: '', message: 'the gateway is stopping' }]);
    // only rules (thresholds, alert profiles) changed: the runtime and its open lines stay as they are
    const hardware = (c: Config) => JSON.stringify([c.buses, c.devices, c.outputs, c.inputs, c.sources]);
    const mqttChanged = this.gw.uplink && CONNECTION_KEYS.some((k) => JSON.stringify(next.config.mqtt[k]) !== JSON.stringify(this.gw.config.mqtt[k]));
    if (hardware(next.config) === hardware(this.gw.config) && !mqttChanged) {
      this.gw.loaded = { ...next, fileHash: this.gw.loaded.fileHash };
      this.gw.config = next.config;
      this.gw.engine.configure({ rules: next.config.rules, outputs: next.config.outputs, inputs: engineInputs(next.config), sources: this.gw.rt.sources, timezone: next.timezone }, this.gw.clock.mono());
      return this.applied(next, meta);
    }
    // swap the runtime: stop the old one (its ports must be free), start the new one strictly
    const old = this.gw.rt;
    const wanted = Object.fromEntries(Object.keys(next.config.outputs).map((n) => [n, this.gw.engine.outputWanted(n)]));
    let fresh: Runtime;
    // an open Firmata board whose bus is unchanged is handed over, not reopened (an Arduino resets on open)
    const boards = old.firmataBuses();
    try {
      fresh = this.gw.buildRuntime(next.config, boards);
    } catch (e) {
      return refuse([{ path: 'buses', message: (e as Error).message }]);
    }
    // a channel that is on and loses its mapping is switched off (and read back) on the old runtime first
    const unmapped = await this.switchOffUnmapped(old, next.config, meta.requestId);
    await old.close(new Set(boards.values()));
    /** Back to the running config (its boards still open). */
    const rollBack = async (): Promise<void> => {
      const back = this.gw.buildRuntime(this.gw.config, boards);
      this.gw.rt = back;
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
      this.gw.logger.warn({ requestId: meta.requestId, issues }, 'new config cannot start; rolled back');
      await rollBack();
      return { ...refuse(issues), rolledBack: true };
    }
    if (mqttChanged) {
      const problem = await this.trySwitchUplink(next.config);
      if (problem) {
        this.gw.logger.warn({ requestId: meta.requestId, problem: problem.message }, 'new broker settings failed; rolled back');
        await fresh.close();
        await rollBack();
        return { ...refuse([problem]), rolledBack: true };
      }
    }
    this.gw.rt = fresh;
    fresh.adopt();
    await this.closeUnused(boards, fresh);
    this.gw.loaded = { ...next, fileHash: this.gw.loaded.fileHash };
    this.gw.config = next.config;
    this.gw.engine.configure({ rules: next.config.rules, outputs: next.config.outputs, inputs: engineInputs(next.config), sources: fresh.sources, timezone: next.timezone }, this.gw.clock.mono());
    fresh.poller.start();
    void this.reassert(fresh, wanted);
    this.gw.record(unmapped);
    return this.applied(next, meta);
  }

  /** A config went live: its version, the log, P/config and P/state. */
  private applied(next: LoadedConfig, meta: ApplyMeta): ApplyResult {
    this.gw.batch.setCommitMs(next.config.storage.commitMs);
    this.gw.dataPath('config versions', () => {
      this.gw.version = this.gw.store.versions.add({ source: meta.source ?? 'remote', requestId: meta.requestId, baseHash: this.gw.loaded.fileHash ?? '', config: JSON.stringify(next.raw) });
    });
    this.gw.logger.info({ version: this.gw.version, requestId: meta.requestId }, 'config applied');
    if (this.gw.started) this.gw.evaluate();
    this.gw.publishConfig();
    this.gw.publishState();
    return { ok: true, version: this.gw.version };
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
      Object.keys(this.gw.config.outputs).map(async (name) => {
        if (where(this.gw.config, name) === where(next, name)) return;
        const was = old.outputs.actual[name];
        if (was === 'off' && !this.gw.engine.outputWanted(name)) return;
        const o = this.gw.config.outputs[name]!;
        const reason = !next.outputs[name] ? 'deleted' : next.outputs[name]!.device !== o.device || next.outputs[name]!.channel !== o.channel ? 'moved' : 'device_changed';
        const got = await old.outputs.set(name, false);
        this.gw.logger.warn({ output: name, device: o.device, channel: o.channel, reason, readBack: got }, `output ${name} (${o.device} channel ${o.channel}) ${reason} by a config change: switched off, read back ${got}`);
        events.push({ type: 'output_unmapped', ts: this.gw.now(), output: name, device: o.device, channel: o.channel, reason, was: was ?? 'unknown', state: got, ...(requestId ? { requestId } : {}) });
      }),
    );
    return events;
  }

  /** Close the handed-over boards that the new runtime did not take (its config dropped or changed them). */
  private async closeUnused(boards: Map<string, FirmataBus>, rt: Runtime): Promise<void> {
    const taken = new Set(rt.buses.values());
    await Promise.all([...boards.values()].filter((b) => !taken.has(b)).map((b) => b.stop()));
  }

  /** Put the outputs of a fresh runtime in the states the rules want. */
  private async reassert(rt: Runtime, wanted: Record<string, boolean>): Promise<void> {
    await Promise.all(Object.keys(rt.config.outputs).map((n) => rt.outputs.set(n, wanted[n] ?? false)));
    this.gw.publishState();
  }

  /**
   * Connect with new broker settings before letting go of the old ones: the new uplink must be
   * accepted by the broker within `waitMs`, else it is dropped and the old one stays.
   */
  private async trySwitchUplink(c: Config, waitMs = 15_000): Promise<ConfigIssue | undefined> {
    const old = this.gw.uplink;
    let fresh: MqttUplink;
    try {
      fresh = this.gw.makeUplink(c);
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
    this.gw.uplink = fresh;
    await old?.stop({ quiet: true });
    this.gw.view.forgetPublished(); // the new connection gets the state at the next publish
    return undefined;
  }
}
