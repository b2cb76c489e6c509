/**
 * The single decisions of SPEC §6, each a pure function of its inputs and the time. The engine
 * (engine.ts) composes them; tests check each at its boundaries.
 */
import { beaufort } from '../../drivers/devices/beaufort.js';
import { deepMerge } from '../deep-merge.js';
import type { AlarmLevels, AlertLevel, Rules } from './schema.js';

export interface Sample {
  /** ms since the epoch */
  t: number;
  v: number;
}

export type BlockReason = 'temperature_below_min' | 'temperature_unknown';

/** Rounding noise of decoded ×0.1 values (3.9000000000000004) must not flip a boundary. */
const EPS = 1e-9;

// ------------------------------------------------------------------ frost interlock

/** Sprinkler outputs: those with a `kind`, and one named `sprinkler` (road by default). */
export function sprinklerKind(name: string, o: { kind?: 'road' | 'greenbelt' }): 'road' | 'greenbelt' | undefined {
  return o.kind ?? (name === 'sprinkler' ? 'road' : undefined);
}

/** The sprinkler outputs of a config and their kinds, in the config's order. */
export function sprinklersOf(outputs: Record<string, { kind?: 'road' | 'greenbelt' }>): [string, 'road' | 'greenbelt'][] {
  const list: [string, 'road' | 'greenbelt'][] = [];
  for (const [name, o] of Object.entries(outputs)) {
    const k = sprinklerKind(name, o);
    if (k) list.push([name, k]);
  }
  return list;
}

/** May a sprinkler of `kind` be on? Unknown (missing or older than tempMaxAgeS) blocks: fail safe. */
export function sprinklingAllowed(
  kind: 'road' | 'greenbelt',
  temp: Sample | undefined,
  now: number,
  cfg: Rules['sprinkling'],
): { allowed: true; reason: null } | { allowed: false; reason: BlockReason; limit: number } {
  const limit = kind === 'greenbelt' ? cfg.greenbeltMinTempC : cfg.minTempC;
  if (!temp || now - temp.t > cfg.tempMaxAgeS * 1000) return { allowed: false, reason: 'temperature_unknown', limit };
  if (temp.v + EPS < limit) return { allowed: false, reason: 'temperature_below_min', limit };
  return { allowed: true, reason: null };
}

// ------------------------------------------------------------------ sweeping

export interface SweepState {
  stopped: boolean;
  /** When the level last went below the stop level while stopped (ms), else null. */
  belowSince: number | null;
  level: number | null;
  mean: number | null;
}

export const initialSweep = (): SweepState => ({ stopped: false, belowSince: null, level: null, mean: null });

/** Sweeping stops at Beaufort ≥ stopAtBeaufort of the mean wind; resumes after resumeAfterS below. */
export function sweepStep(s: SweepState, mean: number | null, now: number, cfg: Rules['sweeping']): { state: SweepState; change?: 'stopped' | 'allowed' } {
  if (mean === null) return { state: s };
  const level = beaufort(mean);
  // object literals, not spreads: this runs four times a second, and a spread of a small state is a runtime call in V8
  if (level >= cfg.stopAtBeaufort) {
    if (!s.stopped) return { state: { stopped: true, belowSince: null, level, mean }, change: 'stopped' };
    return { state: { stopped: s.stopped, belowSince: null, level, mean } };
  }
  if (!s.stopped) return { state: { stopped: s.stopped, belowSince: s.belowSince, level, mean } };
  const belowSince = s.belowSince ?? now;
  if (now - belowSince >= cfg.resumeAfterS * 1000) return { state: { stopped: false, belowSince: null, level, mean }, change: 'allowed' };
  return { state: { stopped: s.stopped, belowSince, level, mean } };
}

// ------------------------------------------------------------------ dust and noise alarms

export type AlarmLevel = 'none' | 'warn' | 'severe';

/**
 * Raised when the mean goes above warn (or straight above severe), escalated from warn when it goes
 * above severe, cleared only when it falls below `clear` (hysteresis). No alarm is lowered from severe
 * to warn: it stays at its highest level until cleared.
 */
export function alarmStep(
  cur: AlarmLevel,
  mean: number | null,
  l: { warn: number; severe?: number; clear: number },
): { level: AlarmLevel; change?: 'raised' | 'escalated' | 'cleared'; threshold?: number } {
  if (mean === null) return { level: cur };
  const severe = l.severe ?? Infinity;
  if (cur === 'none') {
    if (mean > severe + EPS) return { level: 'severe', change: 'raised', threshold: severe };
    if (mean > l.warn + EPS) return { level: 'warn', change: 'raised', threshold: l.warn };
    return { level: 'none' };
  }
  if (mean + EPS < l.clear) return { level: 'none', change: 'cleared', threshold: l.clear };
  if (cur === 'warn' && mean > severe + EPS) return { level: 'severe', change: 'escalated', threshold: severe };
  return { level: cur };
}

// ------------------------------------------------------------------ local time

const formatters = new Map<string, Intl.DateTimeFormat>();
const lastParts = new Map<string, { minute: number; parts: { month: number; day: number; hour: number; minute: number } }>();
/** Local calendar fields of `now` in `timeZone` (cached per minute: the rules ask several times a second). */
export function localParts(now: number, timeZone: string): { month: number; day: number; hour: number; minute: number } {
  const minute = Math.floor(now / 60_000);
  const hit = lastParts.get(timeZone);
  if (hit && hit.minute === minute) return hit.parts;
  const parts = formatParts(now, timeZone);
  lastParts.set(timeZone, { minute, parts });
  return parts;
}

function formatParts(now: number, timeZone: string): { month: number; day: number; hour: number; minute: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone, month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(now)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return { month: p.month ?? 1, day: p.day ?? 1, hour: p.hour ?? 0, minute: p.minute ?? 0 };
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Is it night (nightStart ≤ t < nightEnd, across midnight when start > end)? */
export function isNight(now: number, timeZone: string, cfg: Pick<Rules['noise'], 'nightStart' | 'nightEnd'>): boolean {
  const { hour, minute } = localParts(now, timeZone);
  const m = hour * 60 + minute;
  const s = minutesOf(cfg.nightStart);
  const e = minutesOf(cfg.nightEnd);
  return s <= e ? m >= s && m < e : m >= s || m < e;
}

/** The noise limit in force now, and its clear level. */
export function noiseLimits(now: number, timeZone: string, cfg: Rules['noise']): { period: 'day' | 'night'; warn: number; clear: number } {
  const night = isNight(now, timeZone, cfg);
  const warn = night ? cfg.nightLimit : cfg.dayLimit;
  return { period: night ? 'night' : 'day', warn, clear: warn - cfg.clearBelowDb };
}

/** Is the local date inside a ban period (MM-DD to MM-DD, both days included, across New Year when from > to)? */
export function inBanPeriod(now: number, timeZone: string, periods: Rules['earthworkBan']['periods']): boolean {
  const { month, day } = localParts(now, timeZone);
  const md = `${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
  return periods.some((p) => (p.from <= p.to ? md >= p.from && md <= p.to : md >= p.from || md <= p.to));
}

/** Why earthwork is banned now, or null. */
export function earthworkBanReason(now: number, timeZone: string, alertLevel: AlertLevel, cfg: Rules['earthworkBan']): 'ban_period' | 'alert_level' | null {
  if (inBanPeriod(now, timeZone, cfg.periods)) return 'ban_period';
  if (cfg.alertLevels.includes(alertLevel)) return 'alert_level';
  return null;
}

// ------------------------------------------------------------------ inputs

export interface DebounceState {
  raw: 0 | 1;
  rawSince: number;
  stable: 0 | 1;
}

/** Accept a level once it has held for debounceMs (as sampled); the edge time is when it was first seen. */
export function debounceStep(s: DebounceState, raw: 0 | 1, t: number, debounceMs: number): { state: DebounceState; edge?: { rising: boolean; at: number } } {
  const next = raw !== s.raw ? { ...s, raw, rawSince: t } : { ...s };
  if (next.raw !== next.stable && t - next.rawSince >= debounceMs) {
    next.stable = next.raw;
    return { state: next, edge: { rising: next.raw === 1, at: next.rawSince } };
  }
  return { state: next };
}

// ------------------------------------------------------------------ alert profiles

/** The rules in force at an alert level: the profile's overrides merged over the base rules. */
export function effectiveRules(rules: Rules, level: AlertLevel): Rules {
  const profile = rules.alertProfiles[level];
  return profile ? deepMerge(rules, profile as Partial<Rules>) : rules;
}

export type DustMetric = 'pm10' | 'pm25' | 'tsp';
export const DUST_METRICS: readonly DustMetric[] = ['pm10', 'pm25', 'tsp'];
export type { AlarmLevels };
