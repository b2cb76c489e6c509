/**
 * Report strategies (what goes into the uplink buffer): per device, overridable per metric.
 *
 * - `every`: each poll's value (the default for analog sensors).
 * - `onChange`: a value that moved by at least `deadband` (absolute) or `deadbandPct` (percent of the
 *   value last sent) since the value last sent, or any change when neither is set; a flag change
 *   always counts. With `heartbeatS`, sent at least that often even unchanged. The default for relay
 *   and input channels: on change, with a 300 s heartbeat.
 * - `interval`: every `intervalS`, one value for the polls since: the `latest` (default), or their
 *   `mean`, `min` or `max`, with the latest flag.
 *
 * Only the uplink is reduced: the rules, the page, the aggregates (and HJ 212) see every poll, and
 * events are never filtered. Times are the readings' own (ms); a clock step resets the windows.
 */
import type { Flag, Reading } from './reading.js';

export type Strategy = 'every' | 'onChange' | 'interval';
export interface ReportRule {
  strategy: Strategy;
  deadband?: number;
  deadbandPct?: number;
  intervalS?: number;
  aggregate?: 'latest' | 'mean' | 'min' | 'max';
  heartbeatS?: number;
}
export interface DeviceReport extends Partial<ReportRule> {
  metrics?: Record<string, Partial<ReportRule>>;
}

/** Relays and inputs: a change at once, and a sign of life every five minutes. */
export const CHANNEL_DEFAULT: ReportRule = { strategy: 'onChange', heartbeatS: 300 };
export const ANALOG_DEFAULT: ReportRule = { strategy: 'every' };
const isChannel = (key: string) => /^ch\d+$/.test(key);
const EPS = 1e-9;

interface MetricState {
  /** last value and flag sent, and when */
  sent?: { v: number | undefined; flag: Flag | undefined; ts: number };
  /** interval: the window's start and samples */
  window?: { start: number; n: number; sum: number; min: number; max: number; last: number | undefined; flag: Flag | undefined };
}

export class ReportFilter {
  private readonly state = new Map<string, Map<string, MetricState>>();
  readonly counters = { polled: 0, sent: 0, metricsPolled: 0, metricsSent: 0 };

  constructor(private readonly devices: Map<string, DeviceReport | undefined>) {}

  /** rules resolved once per device and key (read for every metric of every poll) */
  private readonly rules = new Map<string, Map<string, ReportRule>>();

  /** The rule for one metric of a device: the metric's own settings over the device's over the default for its kind. */
  ruleOf(device: string, key: string): ReportRule {
    let byKey = this.rules.get(device);
    if (!byKey) this.rules.set(device, (byKey = new Map()));
    let r = byKey.get(key);
    if (!r) {
      const { metrics, ...own } = this.devices.get(device) ?? {};
      const defined = (o: object | undefined) => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));
      r = { ...(isChannel(key) ? CHANNEL_DEFAULT : ANALOG_DEFAULT), ...defined(own), ...defined(metrics?.[key]) } as ReportRule;
      byKey.set(key, r);
    }
    return r;
  }

  /** What of this poll goes to the uplink: a reading with the metrics to send, or nothing. */
  pass(r: Reading): Reading | undefined {
    this.counters.polled++;
    // every metric of this poll sent as it is (the analog default): the reading itself, nothing to track
    let n = 0;
    for (const k in r.flags) {
      if (this.ruleOf(r.device, k).strategy !== 'every') return this.filter(r);
      n++;
    }
    this.counters.metricsPolled += n;
    if (!n) return undefined;
    this.counters.metricsSent += n;
    this.counters.sent++;
    return r;
  }

  private filter(r: Reading): Reading | undefined {
    let dev = this.state.get(r.device);
    if (!dev) this.state.set(r.device, (dev = new Map()));
    const values: Record<string, number> = {};
    const flags: Record<string, Flag> = {};
    // every metric with a value or a flag (a failed poll has flags only)
    for (const k in r.flags) {
      this.counters.metricsPolled++;
      const rule = this.ruleOf(r.device, k);
      let st = dev.get(k);
      if (!st) dev.set(k, (st = {}));
      const out = this.decide(rule, st, r.values[k], r.flags[k], r.ts);
      if (!out) continue;
      if (out.v !== undefined) values[k] = out.v;
      if (out.flag !== undefined) flags[k] = out.flag;
      st.sent = { v: out.v, flag: out.flag, ts: r.ts };
      this.counters.metricsSent++;
    }
    if (!Object.keys(values).length && !Object.keys(flags).length) return undefined;
    this.counters.sent++;
    return { device: r.device, ts: r.ts, values, flags };
  }

  private decide(rule: ReportRule, st: MetricState, v: number | undefined, flag: Flag | undefined, ts: number): { v: number | undefined; flag: Flag | undefined } | undefined {
    const sent = st.sent;
    // the clock stepped back past what was sent: start over
    if (sent && ts < sent.ts) st.sent = undefined;
    const heartbeatDue = rule.heartbeatS !== undefined && (!st.sent || ts - st.sent.ts >= rule.heartbeatS * 1000 - EPS);
    switch (rule.strategy) {
      case 'every':
        return { v, flag };
      case 'onChange': {
        const last = st.sent;
        if (!last || heartbeatDue || last.flag !== flag || (last.v === undefined) !== (v === undefined)) return { v, flag };
        if (v === undefined || last.v === undefined) return undefined;
        const d = Math.abs(v - last.v);
        const abs = rule.deadband;
        const pct = rule.deadbandPct;
        if (abs === undefined && pct === undefined) return d > EPS ? { v, flag } : undefined;
        if (abs !== undefined && d >= abs - EPS && d > EPS) return { v, flag };
        if (pct !== undefined && d >= (pct / 100) * Math.abs(last.v) - EPS && d > EPS) return { v, flag };
        return undefined;
      }
      case 'interval': {
        const len = (rule.intervalS ?? 60) * 1000;
        let w = st.window;
        if (w && ts < w.start) w = undefined; // clock stepped back
        if (!w) {
          // windows aligned to the interval (every gateway's minute ends at :00)
          st.window = { start: Math.floor(ts / len) * len, n: 0, sum: 0, min: Infinity, max: -Infinity, last: undefined, flag: undefined };
          w = st.window;
        }
        let out: { v: number | undefined; flag: Flag | undefined } | undefined;
        if (ts >= w.start + len) {
          // the window closed: its value goes out, and this poll opens the next window
          if (w.n || w.flag !== undefined) {
            const agg = rule.aggregate ?? 'latest';
            const value = w.n === 0 ? undefined : agg === 'mean' ? Math.round((w.sum / w.n) * 1e6) / 1e6 : agg === 'min' ? w.min : agg === 'max' ? w.max : w.last;
            out = { v: value, flag: w.flag };
          }
          st.window = w = { start: Math.floor(ts / len) * len, n: 0, sum: 0, min: Infinity, max: -Infinity, last: undefined, flag: undefined };
        }
        if (v !== undefined) {
          w.n++;
          w.sum += v;
          w.min = Math.min(w.min, v);
          w.max = Math.max(w.max, v);
          w.last = v;
        }
        w.flag = flag;
        return out;
      }
    }
  }
}
