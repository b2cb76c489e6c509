/**
 * The metric catalog: every fact about a metric in one row. The config schema (`sources`), the
 * units drivers report, the range checks that flag readings, the aggregates and their validity,
 * the HJ 212 codes and the rules' inputs are all read from here. Adding a metric is one row
 * (and its test: test/unit/metric-catalog.test.ts shows one added through `defineMetric` alone).
 *
 * A leaf module: it imports nothing, so drivers, the rules and the uplinks can all use it.
 */

/** Aggregate validity (GB 3095-2012 §8): a minute needs `minute` usable samples, an hour `hour` valid minutes, a day `day` valid hours. */
export interface Validity {
  minute: number;
  hour: number;
  day: number;
}

export interface MetricDef {
  /** the name in configs, telemetry and the store */
  name: string;
  unit: string;
  /** what a sensor can physically report: outside it the value is a device fault (flag D) */
  physical: [number, number];
  /** the usual measurement range of site sensors: outside it the value is over range (flag T); a device's `ranges` overrides it */
  range: [number, number];
  /** decimals worth reporting (the page and HJ 212 round to these) */
  decimals: number;
  /** HJ 212 pollutant / parameter code (SPEC §9); without one the metric is not sent to HJ 212 platforms */
  hj212?: string;
  validity: Validity;
  /** the rules engine reads it (frost, wind, dust alarm, noise) */
  ruleInput?: boolean;
}

/** GB 3095-2012: one sample makes a minute, 45 valid minutes an hour, 20 valid hours a day. */
export const GB3095: Validity = { minute: 1, hour: 45, day: 20 };

const BUILTIN = [
  { name: 'pm25', unit: 'µg/m³', physical: [0, 20_000], range: [0, 1000], decimals: 1, hj212: 'a34004', validity: GB3095, ruleInput: true },
  { name: 'pm10', unit: 'µg/m³', physical: [0, 20_000], range: [0, 1000], decimals: 1, hj212: 'a34002', validity: GB3095, ruleInput: true },
  { name: 'tsp', unit: 'µg/m³', physical: [0, 100_000], range: [0, 20_000], decimals: 1, hj212: 'a34001', validity: GB3095, ruleInput: true },
  { name: 'pm1', unit: 'µg/m³', physical: [0, 20_000], range: [0, 1000], decimals: 1, validity: GB3095 },
  { name: 'temperature', unit: '°C', physical: [-60, 100], range: [-40, 80], decimals: 1, hj212: 'a01001', validity: GB3095, ruleInput: true },
  { name: 'humidity', unit: '%RH', physical: [0, 100], range: [0, 100], decimals: 1, hj212: 'a01002', validity: GB3095 },
  { name: 'pressure', unit: 'kPa', physical: [0, 200], range: [30, 120], decimals: 2, hj212: 'a01006', validity: GB3095 },
  { name: 'windSpeed', unit: 'm/s', physical: [0, 100], range: [0, 60], decimals: 1, hj212: 'a01007', validity: GB3095, ruleInput: true },
  { name: 'windDirection', unit: '°', physical: [0, 360], range: [0, 360], decimals: 0, hj212: 'a01008', validity: GB3095 },
  { name: 'noise', unit: 'dB(A)', physical: [0, 200], range: [30, 130], decimals: 1, hj212: 'LA', validity: GB3095, ruleInput: true },
] as const satisfies readonly MetricDef[];

/** The built-in metrics' names (SPEC §3), as a type. */
export type Metric = (typeof BUILTIN)[number]['name'];
/** The built-in metrics' names (SPEC §3). Metrics added later are in `metricNames()`. */
export const METRICS = BUILTIN.map((m) => m.name) as readonly Metric[];

const catalog = new Map<string, MetricDef>(BUILTIN.map((m) => [m.name, m as unknown as MetricDef]));
let version = 0;

/**
 * Add a metric (or replace one) at start-up, before a config is loaded: everything derived from
 * the catalog sees it from then on.
 */
export function defineMetric(def: MetricDef): void {
  if (!/^[a-z][A-Za-z0-9]{0,31}$/.test(def.name)) throw new Error(`metric name "${def.name}": expected a letter, then letters or digits (up to 32)`);
  if (def.range[0] > def.range[1] || def.physical[0] > def.physical[1]) throw new Error(`metric ${def.name}: a range must be [low, high]`);
  catalog.set(def.name, { ...def });
  version++;
}

export const metricDef = (name: string): MetricDef | undefined => catalog.get(name);
export const isMetric = (name: string): boolean => catalog.has(name);

/** Derived views, rebuilt only when the catalog changes (they are read for every reading). */
function derived<T>(build: (defs: MetricDef[]) => T): () => T {
  let at = -1;
  let value: T;
  return () => {
    if (at !== version) {
      value = build([...catalog.values()]);
      at = version;
    }
    return value;
  };
}

export const metricNames = derived((d) => d.map((m) => m.name));
export const metricUnits = derived((d) => Object.fromEntries(d.map((m) => [m.name, m.unit])) as Record<string, string>);
export const physicalRanges = derived((d) => Object.fromEntries(d.map((m) => [m.name, m.physical])) as Record<string, [number, number]>);
export const defaultRanges = derived((d) => Object.fromEntries(d.map((m) => [m.name, m.range])) as Record<string, [number, number]>);
/** metric → HJ 212 code, for the metrics that have one */
export const hj212Codes = derived((d) => Object.fromEntries(d.filter((m) => m.hj212).map((m) => [m.name, m.hj212!])) as Record<string, string>);
/** HJ 212 code → metric */
export const metricOfCode = derived((d) => Object.fromEntries(d.filter((m) => m.hj212).map((m) => [m.hj212!, m.name])) as Record<string, string>);
export const ruleInputs = derived((d) => d.filter((m) => m.ruleInput).map((m) => m.name));

/** Round a value to its metric's decimals (unknown metrics: 3). */
export function roundFor(metric: string, v: number): number {
  const p = 10 ** (catalog.get(metric)?.decimals ?? 3);
  return Math.round(v * p) / p;
}
