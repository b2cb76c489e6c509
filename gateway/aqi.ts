/**
 * AQI per HJ 633: IAQI by linear interpolation between breakpoints, rounded up; AQI = the largest
 * IAQI; category, colour, and the primary pollutant(s) when AQI > 50. `hj633-2026` (in force since
 * 2026-03-01) puts IAQI 100 at PM10 120 µg/m³ and PM2.5 60 µg/m³; `hj633-2012` at 150 and 75.
 */
export type AqiStandard = 'hj633-2026' | 'hj633-2012';
export type AqiPollutant = 'pm10' | 'pm25';

const IAQI = [0, 50, 100, 150, 200, 300, 400, 500];
export const BREAKPOINTS: Record<AqiStandard, Record<AqiPollutant, number[]>> = {
  'hj633-2026': { pm10: [0, 50, 120, 250, 350, 420, 500, 600], pm25: [0, 35, 60, 115, 150, 250, 350, 500] },
  'hj633-2012': { pm10: [0, 50, 150, 250, 350, 420, 500, 600], pm25: [0, 35, 75, 115, 150, 250, 350, 500] },
};

export const CATEGORIES = [
  { max: 50, level: 1, name: '优', en: 'excellent', colour: '#00E400' },
  { max: 100, level: 2, name: '良', en: 'good', colour: '#FFFF00' },
  { max: 150, level: 3, name: '轻度污染', en: 'lightly polluted', colour: '#FF7E00' },
  { max: 200, level: 4, name: '中度污染', en: 'moderately polluted', colour: '#FF0000' },
  { max: 300, level: 5, name: '重度污染', en: 'heavily polluted', colour: '#99004C' },
  { max: Infinity, level: 6, name: '严重污染', en: 'severely polluted', colour: '#7E0023' },
] as const;

/** IAQI of a concentration (µg/m³); above the last breakpoint it stays 500. */
export function iaqi(pollutant: AqiPollutant, c: number, standard: AqiStandard = 'hj633-2026'): number {
  const bp = BREAKPOINTS[standard][pollutant];
  if (!(c >= 0)) throw new RangeError(`${pollutant}: expected a concentration ≥ 0, got ${c}`);
  if (c >= bp[bp.length - 1]!) return 500;
  let i = 1;
  while (c > bp[i]!) i++;
  const lo = bp[i - 1]!;
  const hi = bp[i]!;
  // rounding noise (0.1 + 0.2) must not push an exact breakpoint up by one
  const v = ((IAQI[i]! - IAQI[i - 1]!) / (hi - lo)) * (c - lo) + IAQI[i - 1]!;
  const r = Math.ceil(v - 1e-9);
  return r === 0 ? 0 : r; // not -0
}

export interface AqiResult {
  aqi: number;
  iaqi: Partial<Record<AqiPollutant, number>>;
  category: (typeof CATEGORIES)[number]['name'];
  categoryEn: string;
  level: number;
  colour: string;
  /** pollutants with the largest IAQI, when AQI > 50; else empty */
  primary: AqiPollutant[];
  standard: AqiStandard;
}

export function aqi(conc: Partial<Record<AqiPollutant, number>>, standard: AqiStandard = 'hj633-2026'): AqiResult | null {
  const sub: Partial<Record<AqiPollutant, number>> = {};
  for (const p of ['pm25', 'pm10'] as const) {
    const c = conc[p];
    if (c !== undefined && c !== null && Number.isFinite(c)) sub[p] = iaqi(p, c, standard);
  }
  const values = Object.values(sub);
  if (!values.length) return null;
  const a = Math.max(...values);
  const cat = CATEGORIES.find((c) => a <= c.max)!;
  const primary = a > 50 ? (Object.keys(sub) as AqiPollutant[]).filter((p) => sub[p] === a) : [];
  return { aqi: a, iaqi: sub, category: cat.name, categoryEn: cat.en, level: cat.level, colour: cat.colour, primary, standard };
}
