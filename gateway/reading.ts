/** Readings with per-metric flags (HJ 212: N normal, D device fault, B communication, T over range, M maintenance, C calibration). */
import type { Values } from '../drivers/devices/types.js';

export type Flag = 'N' | 'D' | 'B' | 'T' | 'M' | 'C';

export interface Reading {
  device: string;
  /** ms since the epoch */
  ts: number;
  values: Values;
  flags: Record<string, Flag>;
}

/** What a sensor can physically report: outside it the value is a device fault (D). */
const PHYSICAL: Record<string, [number, number]> = {
  pm25: [0, 20_000],
  pm10: [0, 20_000],
  tsp: [0, 100_000],
  pm1: [0, 20_000],
  temperature: [-60, 100],
  humidity: [0, 100],
  pressure: [0, 200],
  windSpeed: [0, 100],
  windDirection: [0, 360],
  noise: [0, 200],
};

/** The usual measurement range of site sensors: outside it the value is over range (T). A device's `ranges` overrides it. */
export const DEFAULT_RANGES: Record<string, [number, number]> = {
  pm25: [0, 1000],
  pm10: [0, 1000],
  tsp: [0, 20_000],
  pm1: [0, 1000],
  temperature: [-40, 80],
  humidity: [0, 100],
  pressure: [30, 120],
  windSpeed: [0, 60],
  windDirection: [0, 360],
  noise: [30, 130],
};

/** Flag every value: D when impossible (or not a number), T outside the range, N otherwise. */
export function flagValues(values: Values, ranges: Record<string, [number, number]> = {}): Record<string, Flag> {
  const flags: Record<string, Flag> = {};
  for (const [k, v] of Object.entries(values)) {
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

/** A value the rules may use (normal or over range, not a fault or a gap). */
export const usable = (f: Flag | undefined): boolean => f === 'N' || f === 'T';
