/**
 * What the gateway shows of itself: the P/state payload (published when it changes), GET /api/state
 * for the page, the buffer figures, the status light's pattern, and the latest values and last hour
 * of each source metric.
 */
import type { LightPattern } from '../drivers/firmata.js';
import type { Clock } from './clock.js';
import type { Config } from './config/schema.js';
import type { Hj212Uplink } from './hj212/uplink.js';
import type { Logger } from './log.js';
import type { Flag, Reading } from './reading.js';
import { DUST_METRICS } from './rules/decisions.js';
import type { RulesEngine } from './rules/engine.js';
import type { Runtime } from './runtime.js';
import type { StorageGuard } from './storage-guard.js';
import type { Store } from './store.js';
import type { MqttUplink } from './uplink/mqtt.js';
import { VERSION } from './version.js';
import type { DustgateEvent } from './contract.js';
import { eventText } from './event-text.js';
import { formatTime, type Locale } from './i18n.js';
import { explainRules } from './rule-explain.js';

/**
 * One metric's last hour for the page's chart: times and values in two typed rings (16 bytes a
 * point; a `[ts, value]` array costs about 80 in V8's heap: 2.4 MB an hour for ten metrics at
 * 1 Hz). A point older than the newest one's time minus the span leaves when the next arrives; the
 * ring doubles when an hour holds more points than it has room for (a faster poll), and keeps that size.
 */
export class HourSeries {
  private ts = new Float64Array(64);
  private vs = new Float64Array(64);
  private head = 0;
  private n = 0;

  constructor(private readonly spanMs = 3600_000) {}

  /** points held */
  get length(): number {
    return this.n;
  }

  push(t: number, v: number): void {
    const cap = this.ts.length;
    while (this.n && this.ts[this.head]! < t - this.spanMs) {
      this.head = (this.head + 1) % cap;
      this.n--;
    }
    if (this.n === cap) this.grow();
    const i = (this.head + this.n) % this.ts.length;
    this.ts[i] = t;
    this.vs[i] = v;
    this.n++;
  }

  private grow(): void {
    const ts = new Float64Array(this.ts.length * 2);
    const vs = new Float64Array(this.vs.length * 2);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) % this.ts.length;
      ts[k] = this.ts[i]!;
      vs[k] = this.vs[i]!;
    }
    this.ts = ts;
    this.vs = vs;
    this.head = 0;
  }

  /** Oldest first, as `[ts, value]` pairs (what the page draws). */
  points(): [number, number][] {
    const out = new Array<[number, number]>(this.n);
    for (let k = 0; k < this.n; k++) {
      const i = (this.head + k) % this.ts.length;
      out[k] = [this.ts[i]!, this.vs[i]!];
    }
    return out;
  }
}

/** The latest usable value of each source metric (HJ 212 real-time data) and its last hour (the page's chart). */
export class LatestValues {
  readonly bySource: Record<string, { v: number; flag: Flag }> = {};
  readonly history: Record<string, HourSeries> = {};

  /** the source metrics of each device, worked out once per `sources` (not for every reading) */
  private metricsOf: { of: object; byDevice: Map<string, string[]> } | undefined;

  observe(r: Reading, sources: Partial<Record<string, string>>): void {
    if (this.metricsOf?.of !== sources) {
      const byDevice = new Map<string, string[]>();
      for (const [metric, dev] of Object.entries(sources)) if (dev !== undefined) byDevice.set(dev, [...(byDevice.get(dev) ?? []), metric]);
      this.metricsOf = { of: sources, byDevice };
    }
    for (const metric of this.metricsOf.byDevice.get(r.device) ?? []) {
      const v = r.values[metric];
      const flag = r.flags[metric];
      if (v !== undefined && flag) {
        this.bySource[metric] = { v, flag };
        (this.history[metric] ??= new HourSeries()).push(r.ts, v);
      } else if (flag) delete this.bySource[metric];
    }
  }

  /** Each metric's last hour as `[ts, value]` pairs. */
  lastHour(): Record<string, [number, number][]> {
    const out: Record<string, [number, number][]> = {};
    for (const [m, s] of Object.entries(this.history)) out[m] = s.points();
    return out;
  }
}

/** What the view reads of the gateway. */
export interface ViewHost {
  readonly rt: Runtime;
  readonly engine: RulesEngine;
  readonly clock: Clock;
  readonly storage: StorageGuard;
  readonly store: Store;
  readonly logger: Logger;
  readonly config: Config;
  readonly version: number;
  readonly uplink: MqttUplink | undefined;
  readonly hj212: readonly Hj212Uplink[];
  readonly latest: LatestValues;
  readonly loaded: { readonly locale: Locale; readonly timezone: string };
  readonly started: boolean;
  readonly stopping: boolean;
  now(): number;
  emit(event: 'state', s: unknown): boolean;
}

export class StateView {
  private statsCache: { at: number; value: ReturnType<Store['stats']> & { oldestAgeS: number | null } } | undefined;
  private lastStateKey = '';
  /** The last events, for the page (shown in the page's language). */
  private readonly recent: DustgateEvent[] = [];

  constructor(private readonly gw: ViewHost) {}

  /** An event is being recorded: keep it for the page and return its text in `locale` (never throws). */
  noteEvent(e: DustgateEvent, locale: Locale): string {
    this.recent.push(e);
    if (this.recent.length > 20) this.recent.shift();
    try {
      return eventText(locale, e);
    } catch {
      return e.type;
    }
  }

  /**
   * The status light on every board that has one: fast blink during a dust alarm, slow blink while
   * a device is offline or the broker is unreachable, steady on otherwise (off once stopped).
   */
  lightPattern(): LightPattern {
    if (this.gw.stopping || !this.gw.started) return 'off';
    const alarms = this.gw.engine.snapshot(this.gw.clock.mono()).alarms;
    if (DUST_METRICS.some((m) => alarms[m] && alarms[m] !== 'none')) return 'fast';
    if ([...this.gw.rt.devices.values()].some((d) => d.status === 'offline')) return 'slow';
    if (this.gw.uplink && !this.gw.uplink.connected) return 'slow';
    return 'on';
  }

  updateLight(): void {
    if (!this.gw.rt.lights.length) return;
    const p = this.lightPattern();
    for (const l of this.gw.rt.lights) l.setLight(p);
  }

  state(snap = this.gw.engine.snapshot(this.gw.clock.mono())) {
    const devices: Record<string, string> = {};
    for (const [id, d] of this.gw.rt.devices) devices[id] = d.status;
    return { ts: new Date(this.gw.now()).toISOString(), ...snap, outputs: { ...this.gw.rt.outputs.actual }, devices, storage: this.gw.storage.status().state };
  }

  /**
   * The state without the time, the temperature and the wind mean, as one string: what decides whether
   * P/state goes out. Built field by field (the heartbeat asks about once a second, and almost always
   * nothing changed: building the whole state and stringifying it cost more than the rules' tick).
   * Every other field of `state()` is in it; test/unit/state-key.test.ts changes each one.
   */
  stateKey(snap: ReturnType<RulesEngine['snapshot']>): string {
    const { sprinkling: sp, sweeping: sw } = snap, sep = '\u0001';
    let k = `${sp.allowed}${sep}${sp.reason}${sep}${sp.on}${sep}${sw.allowed}${sep}${sw.beaufort}${sep}${snap.alertLevel}${sep}${this.gw.storage.status().state}`;
    for (const m in snap.alarms) k += `${sep}a${m}=${snap.alarms[m as keyof typeof snap.alarms]}`;
    const actual = this.gw.rt.outputs.actual;
    for (const o in actual) k += `${sep}o${o}=${actual[o]}`;
    for (const [id, d] of this.gw.rt.devices) k += `${sep}d${id}=${d.status}`;
    return k;
  }

  /** Buffer figures, at most once a second (the page and /metrics ask often). */
  bufferStats() {
    const now = this.gw.clock.mono();
    if (!this.statsCache || now - this.statsCache.at > 1000) {
      try {
        const st = this.gw.store.stats();
        this.statsCache = { at: now, value: { ...st, oldestAgeS: st.oldestTs ? Math.max(0, Math.round((this.gw.now() - Date.parse(st.oldestTs)) / 1000)) : null } };
      } catch (e) {
        // a store that cannot be read: the page shows the last figures (and the storage state says why)
        this.gw.logger.warn({ err: (e as Error).message }, 'buffer figures not readable');
        if (!this.statsCache) throw e;
        this.statsCache.at = now;
      }
    }
    return this.statsCache.value;
  }

  /**
   * GET /api/state: rule state, values, device health, buffer and links (and the last hour); `explain`
   * says each rule's state in words, `events` the last events, `display` times, all in `locale`
   * (default gateway.locale) and the site's time zone.
   */
  apiState(withHistory = false, locale: Locale = this.gw.loaded.locale) {
    const devices: Record<string, unknown> = {};
    for (const [id, d] of this.gw.rt.devices) devices[id] = { status: d.status, driver: d.definition.name, counters: d.counters };
    const b = this.bufferStats();
    const state = this.state();
    const now = this.gw.now();
    const tz = this.gw.loaded.timezone;
    const storage = this.gw.storage.status();
    return {
      gateway: this.gw.config.gateway.id,
      version: VERSION,
      configVersion: this.gw.version,
      now: new Date(now).toISOString(),
      locale,
      state,
      explain: explainRules(locale, { snapshot: state, rules: this.gw.engine.effective, means: this.gw.engine.alarmValues, outputs: this.gw.config.outputs, now, timeZone: tz }),
      events: this.recent.map((e) => ({ ts: new Date(e.ts).toISOString(), type: e.type, text: eventText(locale, e), time: formatTime(locale, e.ts, tz) })).reverse(),
      display: { now: formatTime(locale, now, tz, true), timeZone: tz, ...(storage.state === 'failing' && storage.since ? { storageSince: formatTime(locale, Date.parse(storage.since), tz, true) } : {}) },
      latest: this.gw.latest.bySource,
      devices,
      buffer: { telemetry: b.telemetry, events: b.events, oldestTs: b.oldestTs, oldestAgeS: b.oldestAgeS, bytes: b.bytes, capBytes: b.capBytes, fileBytes: b.fileBytes, evicted: b.evicted },
      storage,
      links: {
        mqtt: this.gw.uplink ? (this.gw.uplink.connected ? 'connected' : 'down') : null,
        // every platform connected, else down (null: none enabled); each one by its name
        hj212: this.gw.hj212.length ? (this.gw.hj212.every((p) => p.isConnected) ? 'connected' : 'down') : null,
        hj212Platforms: Object.fromEntries(this.gw.hj212.map((p) => [p.name, p.isConnected ? 'connected' : 'down'])),
      },
      /** What the boards' status lights show (null: no board has one). */
      light: this.gw.rt.lights.length ? this.lightPattern() : null,
      ...(withHistory ? { history: this.gw.latest.lastHour() } : {}),
    };
  }

  /** Publish P/state when something other than the time, the temperature or the wind mean changed. */
  publishState(): void {
    const snap = this.gw.engine.snapshot(this.gw.clock.mono());
    const key = this.stateKey(snap);
    if (key === this.lastStateKey) return;
    this.lastStateKey = key;
    const s = this.state(snap);
    this.gw.uplink?.publishState(s, key);
    this.gw.emit('state', s);
  }

  /** A new connection: the next publish goes out even if nothing changed. */
  forgetPublished(): void {
    this.lastStateKey = '';
  }
}
