/**
 * Minute, hour and day aggregates per device and metric (mean, min, max, count, flag), in local
 * time. Validity is the metric's (the catalog, gateway/metrics.ts; GB 3095 for all built-in ones): a
 * minute needs one usable sample (N or T); an hour ≥ 45 valid minutes; a day ≥ 20 valid hours. An invalid aggregate keeps its numbers but its flag says why (the most
 * frequent flag among its parts that is not N or T, else B for missing data).
 * Pure: readings and time in, closed aggregates out.
 */
import { GB3095, metricDef, metricNames } from './metrics.js';
import type { Flag, Reading } from './reading.js';

export type Period = 'minute' | 'hour' | 'day';

export interface Aggregate {
  period: Period;
  /** ms of the period's local start */
  start: number;
  device: string;
  metric: string;
  mean: number | null;
  min: number | null;
  max: number | null;
  /** valid parts: samples of a minute, valid minutes of an hour, valid hours of a day */
  count: number;
  flag: Flag;
  valid: boolean;
}

export const HOUR_MIN_VALID = GB3095.hour;
export const DAY_MIN_VALID = GB3095.day;

interface Bucket {
  /** its key in the open map (device/metric/period) */
  key: string;
  device: string;
  metric: string;
  period: Period;
  /** closed (by a later sample or a tick): a device's slot holding it looks again */
  closed: boolean;
  start: number;
  end: number;
  sum: number;
  n: number;
  min: number;
  max: number;
  flags: Partial<Record<Flag, number>>;
}

const newBucket = (key: string, device: string, metric: string, period: Period, { start, end }: { start: number; end: number }): Bucket => ({
  key,
  device,
  metric,
  period,
  closed: false,
  start,
  end,
  sum: 0,
  n: 0,
  min: Infinity,
  max: -Infinity,
  flags: {},
});

/**
 * A device's minute buckets in the order its readings list their metrics (a device's readings have
 * one shape): a sample finds its bucket by position, without two map lookups per metric.
 */
interface DeviceSlots {
  names: string[];
  /** the bucket's key; '' for a metric not aggregated */
  keys: string[];
  buckets: (Bucket | undefined)[];
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();
const offsetCache = new Map<string, { hour: number; offset: number }>();

/** UTC offset of a zone at a time, in ms (Asia/Shanghai: +8 h). Cached per UTC hour: every reading asks. */
export function zoneOffsetMs(ms: number, timeZone: string): number {
  const hour = Math.floor(ms / 3600_000);
  const hit = offsetCache.get(timeZone);
  if (hit && hit.hour === hour) return hit.offset;
  const offset = computeOffset(ms, timeZone);
  offsetCache.set(timeZone, { hour, offset });
  return offset;
}

function computeOffset(ms: number, timeZone: string): number {
  let f = offsetFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' });
    offsetFormats.set(timeZone, f);
  }
  const name = f.formatToParts(ms).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):?(\d{2})?/.exec(name);
  if (!m) return 0;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3600_000 + Number(m[3] ?? 0) * 60_000);
}

/** Local start and end (ms) of the period containing `ms`. */
export function periodBounds(period: Period, ms: number, timeZone: string): { start: number; end: number } {
  const off = zoneOffsetMs(ms, timeZone);
  const unit = period === 'minute' ? 60_000 : period === 'hour' ? 3600_000 : 86_400_000;
  const start = Math.floor((ms + off) / unit) * unit - off;
  return { start, end: start + unit };
}

function worstFlag(flags: Partial<Record<Flag, number>>): Flag {
  let best: Flag = 'B';
  let n = 0;
  for (const [f, c] of Object.entries(flags) as [Flag, number][]) if (f !== 'N' && f !== 'T' && c > n) [best, n] = [f, c];
  return best;
}

export class Aggregator {
  /** key device/metric/period → open bucket */
  private open = new Map<string, Bucket>();
  /** Earliest end of an open bucket: ticks before it (plus grace) have nothing to close. */
  private nextDue = Infinity;
  /** the minute `add` saw last, the metrics it keeps (as a set), each device's bucket keys: made once, not per reading */
  private minute = { start: 0, end: 0 };
  private known: { of: readonly string[] | undefined; set: Set<string> } = { of: undefined, set: new Set() };
  private slots = new Map<string, DeviceSlots>();
  /** key → end of the last period closed under it: a sample (or a part) that comes after its period closed is too late, never a second period */
  private readonly closedUntil = new Map<string, number>();

  constructor(
    private readonly timeZone: string,
    /** default: every metric of the catalog */
    private readonly metrics?: string[],
    /** How long after its end a period waits for late samples before it closes. */
    private readonly graceMs = 2000,
  ) {}

  /** Take a reading; returns the aggregates its arrival closed. */
  add(r: Reading): Aggregate[] {
    const out: Aggregate[] = [];
    // the minute of the previous reading, most often this one's too
    if (!(r.ts >= this.minute.start && r.ts < this.minute.end)) this.minute = periodBounds('minute', r.ts, this.timeZone);
    const { start, end } = this.minute;
    const names = this.metrics ?? metricNames();
    if (names !== this.known.of) {
      this.known = { of: names, set: new Set(names) };
      this.slots = new Map();
    }
    let dev = this.slots.get(r.device);
    if (!dev) this.slots.set(r.device, (dev = { names: [], keys: [], buckets: [] }));
    let i = -1;
    for (const metric in r.flags) {
      i++;
      if (dev.names[i] !== metric) {
        // another shape than the device's last reading: this position's metric, looked up once
        dev.names[i] = metric;
        dev.keys[i] = this.known.set.has(metric) ? `${r.device}\u0000${metric}\u0000minute` : '';
        dev.buckets[i] = undefined;
      }
      const key = dev.keys[i]!;
      if (!key) continue;
      const flag = r.flags[metric]!;
      let b = dev.buckets[i];
      if (!b || b.closed) b = this.open.get(key);
      if (b && b.start !== start) {
        if (r.ts < b.start) continue; // late sample of a closed minute
        out.push(...this.close(b));
        b = undefined;
      }
      if (!b) {
        if (start < (this.closedUntil.get(key) ?? -Infinity)) continue; // late sample of a minute a tick closed
        b = newBucket(key, r.device, metric, 'minute', this.minute);
        this.open.set(key, b);
        if (end < this.nextDue) this.nextDue = end;
      }
      dev.buckets[i] = b;
      b.flags[flag] = (b.flags[flag] ?? 0) + 1;
      const v = r.values[metric];
      if ((flag === 'N' || flag === 'T') && v !== undefined && Number.isFinite(v)) {
        b.sum += v;
        b.n++;
        b.min = Math.min(b.min, v);
        b.max = Math.max(b.max, v);
      }
    }
    return out;
  }

  /** Close every period that ended before `now - grace`. */
  tick(now: number): Aggregate[] {
    if (now < this.nextDue + this.graceMs) return [];
    const out: Aggregate[] = [];
    // a bucket closed in a pass leaves the map (allowed while iterating); one it opens is of the next period, closed in its own pass
    for (const period of ['minute', 'hour', 'day'] as const) {
      for (const b of this.open.values()) if (b.period === period && b.end + this.graceMs <= now) out.push(...this.close(b));
    }
    this.nextDue = Infinity;
    for (const b of this.open.values()) if (b.end < this.nextDue) this.nextDue = b.end;
    return out;
  }

  private close(b: Bucket): Aggregate[] {
    const { device, metric, period } = b;
    this.open.delete(b.key);
    b.closed = true;
    this.closedUntil.set(b.key, b.end);
    const need = (metricDef(metric)?.validity ?? GB3095)[period];
    const valid = b.n >= need;
    const agg: Aggregate = {
      period,
      start: b.start,
      device,
      metric,
      mean: b.n ? b.sum / b.n : null,
      min: b.n ? b.min : null,
      max: b.n ? b.max : null,
      count: b.n,
      flag: valid ? ((b.flags.T ?? 0) > (b.flags.N ?? 0) ? 'T' : 'N') : worstFlag(b.flags),
      valid,
    };
    const out = [agg];
    if (period === 'day') return out;
    // roll up into the next period: a valid part counts with its mean, min and max
    const up: Period = period === 'minute' ? 'hour' : 'day';
    const key = `${device}\u0000${metric}\u0000${up}`;
    const bounds = periodBounds(up, b.start, this.timeZone);
    let ub = this.open.get(key);
    if (ub && ub.start !== bounds.start) {
      out.push(...this.close(ub));
      ub = undefined;
    }
    if (!ub) {
      if (bounds.start < (this.closedUntil.get(key) ?? -Infinity)) return out; // a part of a period already closed
      ub = newBucket(key, device, metric, up, bounds);
      this.open.set(key, ub);
      if (ub.end < this.nextDue) this.nextDue = ub.end;
    }
    ub.flags[agg.flag] = (ub.flags[agg.flag] ?? 0) + 1;
    if (valid && agg.mean !== null) {
      ub.sum += agg.mean;
      ub.n++;
      ub.min = Math.min(ub.min, agg.min!);
      ub.max = Math.max(ub.max, agg.max!);
    }
    return out;
  }
}
