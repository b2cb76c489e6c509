/**
 * The rules engine: readings and time in, output commands and events out. No I/O and no timers:
 * every call takes `now`, so a fake clock drives it through any scenario. The outputs it holds are
 * the states the rules *want*; the output manager (outputs.ts) makes the relays follow and reads them back.
 */
import type { EventOrigin } from '../contract.js';
import { ruleInputs, type Metric } from '../metrics.js';
import { usable, type Reading } from '../reading.js';
import type { AlertLevel, Rules } from './schema.js';
import {
  DUST_METRICS,
  alarmStep,
  debounceStep,
  earthworkBanReason,
  effectiveRules,
  initialSweep,
  noiseLimits,
  sprinklerKind,
  sprinklersOf,
  sprinklingAllowed,
  sweepStep,
  type AlarmLevel,
  type BlockReason,
  type DebounceState,
  type Sample,
  type SweepState,
} from './decisions.js';
import { MeanWindows } from './windows.js';
import type { EngineConfig, OutputCommand, OutputRequestResult, OutputState, RuleEvent } from './types.js';

export type { EngineConfig, InputSettings, OutputCommand, OutputRequestResult, OutputSettings, RuleEvent } from './types.js';

type AlarmMetric = 'pm10' | 'pm25' | 'tsp' | 'noise';
const DEFAULT_PULSE_MS = 500;

export class RulesEngine {
  private cfg!: EngineConfig;
  private rules!: Rules;
  alertLevel: AlertLevel = 'none';
  private latest: Partial<Record<Metric, Sample>> = {};
  private readonly windows = new MeanWindows();
  private sweep: SweepState = initialSweep();
  private alarms: Record<AlarmMetric, AlarmLevel> = { pm10: 'none', pm25: 'none', tsp: 'none', noise: 'none' };
  readonly alarmValues: Partial<Record<AlarmMetric, number>> = {};
  private spray: { phase: 'idle' | 'spraying' | 'resting'; until: number; blocked: Record<string, BlockReason | null> } = { phase: 'idle', until: 0, blocked: {} };
  private outputs: Record<string, OutputState> = {};
  private inputs: Record<string, DebounceState> = {};
  private violations: Record<string, boolean> = {};
  private pending: RuleEvent[] = [];
  private commands: OutputCommand[] = [];

  /**
   * `now` everywhere in this class is monotonic time (durations); `wallOf` turns it into wall time
   * for event timestamps and the calendar rules (night hours, the ban window). A fake clock in tests
   * is both.
   */
  private readonly wallOf: (t: number) => number;

  constructor(cfg: EngineConfig, now: number, o: { wallOf?: (t: number) => number } = {}) {
    this.wallOf = o.wallOf ?? ((t) => t);
    this.configure(cfg, now);
  }

  /** Apply a (new) config; the rule state (means, alarms, outputs) carries over. */
  configure(cfg: EngineConfig, now: number): void {
    this.cfg = cfg;
    this.sprinklerList = undefined;
    this.rules = effectiveRules(cfg.rules, this.alertLevel);
    for (const name of Object.keys(cfg.outputs)) this.outputs[name] ??= { on: false, since: now, offSince: null, offAt: null };
    for (const name of Object.keys(this.outputs)) if (!cfg.outputs[name]) delete this.outputs[name];
    for (const name of Object.keys(cfg.inputs)) this.inputs[name] ??= { raw: 0, rawSince: now, stable: 0 };
  }

  get effective(): Rules {
    return this.rules;
  }

  /** Change the pollution alert level: its profile's overrides apply from now on. */
  setAlertLevel(level: AlertLevel, now: number, why: EventOrigin = {}): void {
    if (level === this.alertLevel) return;
    const from = this.alertLevel;
    this.alertLevel = level;
    this.rules = effectiveRules(this.cfg.rules, level);
    this.emit({ type: 'alert_level', ts: now, level, from, ...why });
  }

  private emit(e: RuleEvent): void {
    this.pending.push({ ...e, ts: this.wallOf(e.ts) });
  }

  private command(output: string, on: boolean, reason: string, now: number, extra: Record<string, unknown> = {}): void {
    const o = this.outputs[output];
    if (!o || o.on === on) return;
    o.on = on;
    o.since = now;
    if (on) o.offSince = null;
    else {
      o.offSince = now;
      o.offAt = null;
    }
    this.commands.push({ output, on, reason });
    this.emit({ type: 'output_changed', ts: now, output, state: on ? 'on' : 'off', reason, ...extra });
  }

  // ---------------------------------------------------------------- readings

  /** Take a reading (`at`: its monotonic time; default its ts): source metrics feed the means, input channels the debouncers. */
  ingest(r: Reading, at: number = r.ts): void {
    for (const m of ruleInputs() as Metric[]) {
      if (this.sourceOf(m) !== r.device) continue;
      const v = r.values[m];
      if (v === undefined || !usable(r.flags[m])) continue;
      const s = { t: at, v };
      this.latest[m] = s;
      this.windows.push(m, s);
    }
    for (const [name, input] of Object.entries(this.cfg.inputs)) {
      if (input.device !== r.device) continue;
      const raw = r.values[`ch${input.channel}`];
      if (raw === undefined) continue;
      const st = this.inputs[name] ?? { raw: 0, rawSince: at, stable: 0 };
      const { state, edge } = debounceStep(st, raw ? 1 : 0, at, input.debounceMs);
      this.inputs[name] = state;
      if (edge?.rising && input.kind === 'video-trigger') this.emit({ type: 'video_trigger', ts: at, input: name, edgeAt: new Date(this.wallOf(edge.at)).toISOString() });
    }
  }

  private sourceOf(m: Metric): string | undefined {
    return this.cfg.sources[m];
  }

  /** The latest usable temperature, or undefined. */
  get temperature(): Sample | undefined {
    return this.latest.temperature;
  }

  // ---------------------------------------------------------------- time

  /** Run every rule at `now`; returns the events and output commands since the last call. */
  evaluate(now: number): { events: RuleEvent[]; commands: OutputCommand[] } {
    const r = this.rules;
    this.prune(now);
    this.frost(now);
    this.sweeping(now, r);
    const changed = this.dustAlarms(now, r);
    this.earthwork(now, r);
    this.sprayCycle(now, r, changed);
    this.safety(now, r);
    const out = { events: this.pending, commands: this.commands };
    this.pending = [];
    this.commands = [];
    return out;
  }

  /**
   * The earliest time after `now` at which `evaluate` can change something with no new reading: a
   * pulse or timed command ends, an output reaches maxOnS or the end of its minOffS, a spray or rest
   * phase ends, the temperature goes stale, sweeping may resume. Infinity: none. What else moves with
   * time alone (means as samples age out, night hours, the ban window) changes slowly; the gateway
   * evaluates for it at least once a second.
   */
  nextDeadline(now: number): number {
    let next = Infinity;
    const at = (t: number) => {
      if (t > now && t < next) next = t;
    };
    for (const [name, o] of Object.entries(this.outputs)) {
      if (o.on && o.offAt !== null) at(o.offAt);
      if (!this.guarded(name)) continue;
      const { maxOnS, minOffS } = this.limitsOf(name);
      if (o.on) at(o.since + maxOnS * 1000);
      else if (o.offSince !== null) at(o.offSince + minOffS * 1000);
    }
    if (this.spray.phase !== 'idle') at(this.spray.until);
    // sprinklingAllowed: stale strictly after tempMaxAgeS
    const t = this.latest.temperature;
    if (t) at(t.t + this.rules.sprinkling.tempMaxAgeS * 1000 + 1);
    if (this.sweep.stopped && this.sweep.belowSince !== null) at(this.sweep.belowSince + this.rules.sweeping.resumeAfterS * 1000);
    return next;
  }

  /** Ingest readings and evaluate. */
  step(now: number, readings: Reading[] = []): { events: RuleEvent[]; commands: OutputCommand[] } {
    for (const rd of readings) this.ingest(rd);
    return this.evaluate(now);
  }

  private prune(now: number): void {
    const r = this.rules;
    const keepS = Math.max(r.sweeping.windAverageS, r.dustAlarm.averageS, r.noise.averageS);
    this.windows.prune(now - keepS * 1000);
  }

  /** The sprinklers of the config (worked out again for each config: the frost check asks four times a second). */
  private sprinklers(): readonly [string, 'road' | 'greenbelt'][] {
    const outs = this.cfg.outputs;
    if (this.sprinklerList?.of !== outs) this.sprinklerList = { of: outs, list: sprinklersOf(outs) };
    return this.sprinklerList.list;
  }
  private sprinklerList: { of: object; list: [string, 'road' | 'greenbelt'][] } | undefined;

  /** Frost interlock: a sprinkler that is on while blocked goes off at once. */
  private frost(now: number): void {
    for (const [name, kind] of this.sprinklers()) {
      const o = this.outputs[name];
      if (!o?.on) continue;
      const a = sprinklingAllowed(kind, this.latest.temperature, now, this.rules.sprinkling);
      if (a.allowed) continue;
      this.command(name, false, a.reason, now);
      this.emit({ type: 'sprinkler_stopped', ts: now, output: name, reason: a.reason, temperature: this.latest.temperature?.v ?? null, limit: a.limit });
      if (this.spray.phase === 'spraying') this.spray = { ...this.spray, phase: 'idle' };
    }
  }

  private sweeping(now: number, r: Rules): void {
    const mean = this.windows.mean('windSpeed', now, r.sweeping.windAverageS);
    const { state, change } = sweepStep(this.sweep, mean, now, r.sweeping);
    this.sweep = state;
    if (change) {
      const windMean = Math.round((state.mean ?? 0) * 100) / 100;
      this.emit({ type: change === 'stopped' ? 'sweeping_stopped' : 'sweeping_allowed', ts: now, beaufort: state.level, windMean });
    }
    if (this.outputs.sweepStopSignal && this.outputs.sweepStopSignal.on !== this.sweep.stopped)
      this.command('sweepStopSignal', this.sweep.stopped, this.sweep.stopped ? 'sweeping_stopped' : 'sweeping_allowed', now);
  }

  /** Returns the metrics whose alarm was raised or escalated now. */
  private dustAlarms(now: number, r: Rules): AlarmMetric[] {
    const changed: AlarmMetric[] = [];
    const check = (metric: AlarmMetric, mean: number | null, l: { warn: number; severe?: number; clear: number }, extra: Record<string, unknown> = {}) => {
      const res = alarmStep(this.alarms[metric], mean, l);
      if (mean !== null) this.alarmValues[metric] = mean;
      if (!res.change) return;
      this.alarms[metric] = res.level;
      const level = res.change === 'cleared' ? 'none' : res.level;
      this.emit({ type: 'dust_alarm', ts: now, state: res.change, level, metric, value: Math.round((mean ?? 0) * 100) / 100, threshold: res.threshold, ...extra });
      if (res.change !== 'cleared') changed.push(metric);
    };
    for (const m of DUST_METRICS) check(m, this.windows.mean(m, now, r.dustAlarm.averageS), r.dustAlarm[m]);
    const nl = noiseLimits(this.wallOf(now), this.cfg.timezone, r.noise);
    check('noise', this.windows.mean('noise', now, r.noise.averageS), { warn: nl.warn, clear: nl.clear }, { period: nl.period });
    // linkage on raise/escalate: pulse the camera outputs named in onWarn
    if (changed.length)
      for (const a of r.dustAlarm.onWarn) if (a !== 'spray' && this.cfg.outputs[a]) this.pulse(a, now, `dust_alarm_${changed[0]}`);
    return changed;
  }

  private dustAlarmActive(): boolean {
    return DUST_METRICS.some((m) => this.alarms[m] !== 'none');
  }

  private pulse(name: string, now: number, reason: string): void {
    const o = this.outputs[name];
    const cfg = this.cfg.outputs[name];
    if (!o || !cfg) return;
    if (o.on) {
      o.offAt = now + (cfg.pulseMs ?? DEFAULT_PULSE_MS);
      return;
    }
    this.command(name, true, reason, now);
    o.offAt = now + (cfg.pulseMs ?? DEFAULT_PULSE_MS);
  }

  private earthwork(now: number, r: Rules): void {
    const ban = earthworkBanReason(this.wallOf(now), this.cfg.timezone, this.alertLevel, r.earthworkBan);
    for (const [name, input] of Object.entries(this.cfg.inputs)) {
      if (input.kind !== 'earthwork-activity') continue;
      const active = this.inputs[name]?.stable === 1;
      const violation = active && ban !== null;
      if (violation && !this.violations[name]) {
        this.emit({ type: 'earthwork_violation', ts: now, input: name, reason: ban, alertLevel: this.alertLevel });
        for (const [o, c] of Object.entries(this.cfg.outputs)) if (c.pulseMs) this.pulse(o, now, 'earthwork_violation');
      }
      this.violations[name] = violation;
    }
  }

  /** Spray for sprayS while a dust alarm lasts, rest sprayRestS, repeat; frost and minOffS gate every start. */
  private sprayCycle(now: number, r: Rules, _changed: AlarmMetric[]): void {
    if (!r.dustAlarm.onWarn.includes('spray')) return;
    const sprinklers = this.sprinklers();
    const active = this.dustAlarmActive();
    const sp = this.spray;
    if (!active) {
      if (sp.phase === 'spraying') for (const [n] of sprinklers) this.command(n, false, 'alarm_cleared', now);
      this.spray = { phase: 'idle', until: 0, blocked: {} };
      return;
    }
    if (sp.phase === 'spraying' && now >= sp.until) {
      for (const [n] of sprinklers) this.command(n, false, 'spray_done', now);
      this.spray = { ...sp, phase: 'resting', until: now + r.dustAlarm.sprayRestS * 1000 };
      return;
    }
    if (sp.phase === 'resting' && now >= sp.until) this.spray = { ...sp, phase: 'idle' };
    if (this.spray.phase !== 'idle') return;
    let started = false;
    for (const [name, kind] of sprinklers) {
      const a = sprinklingAllowed(kind, this.latest.temperature, now, r.sprinkling);
      if (!a.allowed) {
        if (this.spray.blocked[name] !== a.reason) {
          this.emit({ type: 'sprinkler_blocked', ts: now, output: name, reason: a.reason, requestedBy: 'dust_alarm', temperature: this.latest.temperature?.v ?? null, limit: a.limit });
          this.spray.blocked[name] = a.reason;
        }
        continue;
      }
      this.spray.blocked[name] = null;
      if (!this.minOffElapsed(name, now)) continue;
      this.command(name, true, 'dust_alarm', now, { forS: r.dustAlarm.sprayS });
      started = true;
    }
    if (started) this.spray = { ...this.spray, phase: 'spraying', until: now + r.dustAlarm.sprayS * 1000 };
  }

  private limitsOf(name: string): { maxOnS: number; minOffS: number } {
    const c = this.cfg.outputs[name];
    return { maxOnS: c?.maxOnS ?? this.rules.outputs.maxOnS, minOffS: c?.minOffS ?? this.rules.outputs.minOffS };
  }

  /** The sweep-stop signal mirrors a state and pulse outputs are bounded by pulseMs: neither has maxOnS/minOffS. */
  private guarded(name: string): boolean {
    return name !== 'sweepStopSignal' && !this.cfg.outputs[name]?.pulseMs;
  }

  private minOffElapsed(name: string, now: number): boolean {
    const o = this.outputs[name];
    if (!o || !this.guarded(name) || o.offSince === null) return true;
    return now - o.offSince >= this.limitsOf(name).minOffS * 1000;
  }

  private safety(now: number, _r: Rules): void {
    for (const [name, o] of Object.entries(this.outputs)) {
      if (!o.on) continue;
      if (o.offAt !== null && now >= o.offAt) {
        this.command(name, false, this.cfg.outputs[name]?.pulseMs ? 'pulse_end' : 'duration_end', now);
        continue;
      }
      if (this.guarded(name) && now - o.since >= this.limitsOf(name).maxOnS * 1000) {
        this.command(name, false, 'max_on_time', now, { maxOnS: this.limitsOf(name).maxOnS });
        if (this.spray.phase === 'spraying' && this.sprinklers().some(([n]) => n === name))
          this.spray = { ...this.spray, phase: 'resting', until: now + this.rules.dustAlarm.sprayRestS * 1000 };
      }
    }
  }

  // ---------------------------------------------------------------- requests from outside the rules

  /**
   * Switch an output on request (remote command, schedule). Every interlock holds: frost for
   * sprinklers, minOffS, maxOnS (a duration is capped by it). A refused request is an event.
   */
  request(name: string, on: boolean, now: number, opts: { durationS?: number; by?: string; requestId?: string } = {}): OutputRequestResult {
    const o = this.outputs[name];
    const cfg = this.cfg.outputs[name];
    if (!o || !cfg) return { ok: false, code: 'unknown_output', message: `no output "${name}"; outputs are ${Object.keys(this.outputs).join(', ')}` };
    const by = opts.by ?? 'request';
    if (!on) {
      this.command(name, false, by, now, opts.requestId ? { requestId: opts.requestId } : {});
      return { ok: true };
    }
    const kind = sprinklerKind(name, cfg);
    if (kind) {
      const a = sprinklingAllowed(kind, this.latest.temperature, now, this.rules.sprinkling);
      if (!a.allowed) {
        const t = this.latest.temperature;
        this.emit({ type: 'sprinkler_blocked', ts: now, output: name, reason: a.reason, requestedBy: by, requestId: opts.requestId, temperature: t?.v ?? null, limit: a.limit });
        return {
          ok: false,
          code: a.reason,
          message: a.reason === 'temperature_unknown' ? 'no recent temperature reading: sprinkling is blocked until one arrives' : `temperature ${t?.v} °C is below ${a.limit} °C`,
        };
      }
    }
    if (!this.minOffElapsed(name, now)) {
      const left = Math.ceil((this.limitsOf(name).minOffS * 1000 - (now - (o.offSince ?? now))) / 1000);
      return { ok: false, code: 'min_off_time', message: `${name} must stay off ${left} s more (minOffS ${this.limitsOf(name).minOffS})` };
    }
    this.command(name, true, by, now, opts.requestId ? { requestId: opts.requestId } : {});
    const dur = cfg.pulseMs ? cfg.pulseMs : opts.durationS !== undefined ? Math.min(opts.durationS, this.limitsOf(name).maxOnS) * 1000 : null;
    if (dur !== null) o.offAt = now + dur;
    return { ok: true };
  }

  /** Drop all outputs (shutdown): the desired state of every output becomes off. */
  allOff(now: number, reason: string): OutputCommand[] {
    for (const name of Object.keys(this.outputs)) this.command(name, false, reason, now);
    const c = this.commands;
    this.commands = [];
    return c;
  }

  /** Take back the pending events (after allOff or setAlertLevel outside evaluate). */
  drainEvents(): RuleEvent[] {
    const e = this.pending;
    this.pending = [];
    return e;
  }

  outputWanted(name: string): boolean {
    return this.outputs[name]?.on ?? false;
  }

  // ---------------------------------------------------------------- state

  /** The rule part of the P/state payload. */
  snapshot(now: number) {
    const sprinklers = this.sprinklers();
    const first = sprinklers[0];
    const a = first ? sprinklingAllowed(first[1], this.latest.temperature, now, this.rules.sprinkling) : sprinklingAllowed('road', this.latest.temperature, now, this.rules.sprinkling);
    const alarms: Record<string, AlarmLevel> = {};
    for (const m of Object.keys(this.alarms) as AlarmMetric[]) if (this.sourceOf(m)) alarms[m] = this.alarms[m];
    return {
      sprinkling: {
        allowed: a.allowed,
        reason: a.reason,
        on: sprinklers.some(([n]) => this.outputs[n]?.on),
        temperature: this.latest.temperature?.v ?? null,
      },
      sweeping: {
        allowed: !this.sweep.stopped,
        beaufort: this.sweep.level,
        windMean: this.sweep.mean === null ? null : Math.round(this.sweep.mean * 100) / 100,
      },
      alarms,
      alertLevel: this.alertLevel,
    };
  }
}
