/** Readings with per-metric flags (HJ 212: N normal, D device fault, B communication, T over range, M maintenance, C calibration). */
import type { Values } from '../drivers/devices/types.js';
import { defaultRanges, physicalRanges } from './metrics.js';

export type Flag = 'N' | 'D' | 'B' | 'T' | 'M' | 'C';

export interface Reading {
  device: string;
  /** ms since the epoch */
  ts: number;
  values: Values;
  flags: Record<string, Flag>;
}


/** Flag every value (limits from the metric catalog, gateway/metrics.ts): D when impossible (or not a number), T outside the range, N otherwise. */
export function flagValues(values: Values, ranges: Record<string, [number, number]> = {}): Record<string, Flag> {
  const flags: Record<string, Flag> = {};
  const PHYSICAL = physicalRanges();
  const DEFAULT_RANGES = defaultRanges();
  // for…in, not Object.entries: no array of pairs for every reading
  for (const k in values) {
    const v = values[k]!;
    const phys = PHYSICAL[k];
    const range = ranges[k] ?? DEFAULT_RANGES[k];
    if (!Number.isFinite(v) || (phys && (v < phys[0] || v > phys[1]))) flags[k] = 'D';
    else if (range && (v < range[0] || v > range[1])) flags[k] = 'T';
    else flags[k] = 'N';
  }
  return flags;
}

/** A reading for a poll that failed: no values, every metric flagged B. */
export function commFailure(device: string, ts: number, metrics: string[]): Reading {
  return { device, ts, values: {}, flags: Object.fromEntries(metrics.map((m) => [m, 'B' as Flag])) };
}

/** A reading's telemetry record (`iso`: its time as text, if made already; `mark`: the clock's flag, if any). */
export function telemetryBody(r: Reading, iso: string | undefined, mark: Readonly<Record<string, string>>): string {
  return JSON.stringify({ ts: iso ?? new Date(r.ts).toISOString(), device: r.device, values: r.values, flags: r.flags, ...mark });
}

/** A value the rules may use (normal or over range, not a fault or a gap). */
export const usable = (f: Flag | undefined): boolean => f === 'N' || f === 'T';
