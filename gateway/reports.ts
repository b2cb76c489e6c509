/**
 * Aggregate reports (SPEC §10): closed minute/hour/day aggregates are kept in their own table (35+
 * days, for HJ 212 back-fill), handed to the aggregates uplinks (HJ 212), and put in the record
 * buffer for P/aggregates (one message per device and period, with its seq), with AQI for hours and days and the year's running mean against the city's target.
 */
import { periodBounds, type Aggregate } from './aggregates.js';
import { aqi, type AqiStandard } from './aqi.js';
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { Uplink } from './uplink/uplink.js';
import type { Store } from './store.js';

export interface ReportsHost {
  readonly config: Config;
  readonly loaded: LoadedConfig;
  readonly store: Store;
  readonly uplinks: Uplink[];
  readonly batch: { add(kind: 'aggregate', body: string): void; readonly inCycle: boolean; onCycleDone(fn: () => void): void };
  now(): number;
  emit(event: 'aggregates', msg: unknown): boolean;
  dataPath(what: string, job: () => void): void;
}

export class AggregateReports {
  /** closed by a poll cycle's readings, reported once the cycle's readings are all in */
  private held: Aggregate[] = [];

  constructor(private readonly gw: ReportsHost) {
    gw.batch.onCycleDone(() => {
      const list = this.held;
      this.held = [];
      if (list.length) this.report(list);
    });
  }

  /**
   * Closed aggregates: kept in their own table (35+ days, for HJ 212 back-fill), published on
   * P/aggregates one message per device and period, with AQI for hours and days. Those a poll
   * cycle's readings close (fifty devices' minutes at once) are saved in one transaction, after the
   * cycle's readings, instead of one each between them.
   */
  closed(list: Aggregate[]): void {
    if (this.gw.batch.inCycle) this.held.push(...list);
    else this.report(list);
  }

  private report(list: Aggregate[]): void {
    this.gw.dataPath('aggregates store', () => this.gw.store.aggs.save(list.map((a) => ({ ...a, start: new Date(a.start).toISOString() }))));
    for (const u of this.gw.uplinks) if (u.onAggregates) this.gw.dataPath(u.name, () => u.onAggregates!(list));
    const groups = new Map<string, Aggregate[]>();
    for (const a of list) {
      const k = `${a.period}|${a.start}|${a.device}`;
      groups.set(k, [...(groups.get(k) ?? []), a]);
    }
    for (const g of groups.values()) {
      const { period, start, device } = g[0]!;
      const metrics = Object.fromEntries(g.map((a) => [a.metric, { mean: a.mean === null ? null : Math.round(a.mean * 100) / 100, min: a.min, max: a.max, count: a.count, flag: a.flag, valid: a.valid }]));
      const conc: Record<string, number> = {};
      for (const a of g) if ((a.metric === 'pm10' || a.metric === 'pm25') && a.valid && a.mean !== null) conc[a.metric] = a.mean;
      const msg: Record<string, unknown> = { gateway: this.gw.config.gateway.id, period, start: new Date(start).toISOString(), device, metrics };
      if (period !== 'minute') msg.aqi = aqi(conc, this.gw.config.aqi.standard as AqiStandard);
      if (period === 'day') msg.annual = this.annualReport(device, start);
      this.gw.emit('aggregates', msg);
      // through the buffer like readings: a seq, kept while the broker is away, acknowledged by each uplink
      const { gateway: _, ...body } = msg;
      this.gw.batch.add('aggregate', JSON.stringify(body));
    }
    if (list.some((a) => a.period === 'day')) this.gw.dataPath('aggregates prune', () => this.gw.store.aggs.prune(new Date(this.gw.now() - 40 * 86_400_000).toISOString()));
  }

  /** The running mean of valid daily means since 1 January (local) against the city's annual target. */
  annualReport(device: string, dayStart: number) {
    const year = new Intl.DateTimeFormat('en-GB', { timeZone: this.gw.loaded.timezone, year: 'numeric' }).format(dayStart);
    const jan1 = periodBounds('day', Date.parse(`${year}-01-01T12:00:00Z`), this.gw.loaded.timezone).start;
    const days = this.gw.store.aggs.range('day', new Date(jan1).toISOString(), new Date(dayStart).toISOString(), device);
    const targets = this.gw.loaded.preset.cityTargets as Record<string, Record<string, { pm10: number; pm25: number }>> | undefined;
    const city = this.gw.config.gateway.site.city;
    const target = targets ? Object.entries(targets).filter(([k]) => k.startsWith('table')).map(([, t]) => t[city]).find(Boolean) : undefined;
    const out: Record<string, unknown> = { city, since: new Date(jan1).toISOString() };
    for (const m of ['pm10', 'pm25'] as const) {
      const valid = days.filter((d) => d.metric === m && d.flag !== 'B' && d.flag !== 'D' && d.mean !== null && d.count >= 20);
      if (!valid.length) continue;
      const mean = valid.reduce((a, d) => a + d.mean!, 0) / valid.length;
      out[m] = { mean: Math.round(mean * 10) / 10, days: valid.length, target: target?.[m] ?? null, ratio: target ? Math.round((mean / target[m]) * 1000) / 1000 : null };
    }
    return out;
  }
}
