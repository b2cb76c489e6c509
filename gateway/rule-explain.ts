/**
 * Each rule's state as a site manager says it, with its threshold and the live value:
 * 「气温 3.5 ℃ 低于 4 ℃，停止洒水」, 「2 分钟平均风速 3.6 m/s（3 级），停止人工清扫」,
 * 「PM10 5 分钟均值 212 µg/m³，超过 200，严重」, the earthwork ban window and the alert level.
 * Pure: the page's /api/state asks with the language it shows.
 */
import { roundFor } from './metrics.js';
import { formatDuration, formatMonthDay, metricLabel, t, unitLabel, type Locale } from './i18n.js';
import { DUST_METRICS, earthworkBanReason, noiseLimits, sprinklersOf } from './rules/decisions.js';
import type { AlertLevel, Rules } from './rules/schema.js';

export interface RuleFacts {
  /** the engine's snapshot (P/state's rule part) */
  snapshot: {
    sprinkling: { allowed: boolean; reason: string | null; on: boolean; temperature: number | null };
    sweeping: { allowed: boolean; beaufort: number | null; windMean: number | null };
    alarms: Record<string, string>;
    alertLevel: string;
  };
  /** the rules in force (the alert level's profile applied) */
  rules: Rules;
  /** the latest rolling means of the alarm metrics */
  means: Partial<Record<string, number>>;
  outputs: Record<string, { kind?: 'road' | 'greenbelt' }>;
  /** wall-clock ms and the site's zone (ban dates, night hours) */
  now: number;
  timeZone: string;
}

export interface RuleTexts {
  sprinkling: string;
  sweeping: string;
  alarms: { metric: string; level: string; text: string }[];
  earthwork: { banned: boolean; text: string };
  alert: string;
}

export function explainRules(locale: Locale, f: RuleFacts): RuleTexts {
  const r = f.rules;
  const s = f.snapshot;
  const tempUnit = unitLabel(locale, 'temperature', '°C');
  const kind = sprinklersOf(f.outputs)[0]?.[1] ?? 'road';
  const min = kind === 'greenbelt' ? r.sprinkling.greenbeltMinTempC : r.sprinkling.minTempC;
  let sprinkling =
    s.sprinkling.temperature === null || s.sprinkling.reason === 'temperature_unknown'
      ? t(locale, 'rule.sprinkling.unknown', { maxAge: formatDuration(locale, r.sprinkling.tempMaxAgeS) })
      : t(locale, s.sprinkling.allowed ? 'rule.sprinkling.allowed' : 'rule.sprinkling.below', { t: s.sprinkling.temperature, min, unit: tempUnit });
  if (s.sprinkling.on) sprinkling += locale === 'zh-CN' ? `（${t(locale, 'rule.sprinkling.running')}）` : ` (${t(locale, 'rule.sprinkling.running')})`;

  const avgWind = formatDuration(locale, r.sweeping.windAverageS);
  const w = s.sweeping;
  const windParams = { avg: avgWind, mean: w.windMean === null ? null : Math.round(w.windMean * 10) / 10, level: w.beaufort, stop: r.sweeping.stopAtBeaufort, resume: formatDuration(locale, r.sweeping.resumeAfterS) };
  const sweeping =
    w.windMean === null
      ? t(locale, 'rule.sweeping.nodata')
      : !w.allowed
        ? t(locale, (w.beaufort ?? 0) < r.sweeping.stopAtBeaufort ? 'rule.sweeping.resuming' : 'rule.sweeping.stopped', windParams)
        : t(locale, 'rule.sweeping.allowed', windParams);

  const alarms: RuleTexts['alarms'] = [];
  for (const metric of Object.keys(s.alarms)) {
    const level = s.alarms[metric]!;
    const noise = metric === 'noise' ? noiseLimits(f.now, f.timeZone, r.noise) : undefined;
    const limits = noise ? { warn: noise.warn, severe: undefined } : (DUST_METRICS as readonly string[]).includes(metric) ? r.dustAlarm[metric as 'pm10'] : undefined;
    if (!limits) continue;
    const name = noise ? t(locale, 'rule.alarm.noiseName', { period: t(locale, `period.${noise.period}`) }) : metricLabel(locale, metric);
    const mean = f.means[metric];
    const p = { metric: name, avg: formatDuration(locale, noise ? r.noise.averageS : r.dustAlarm.averageS), mean: mean === undefined ? undefined : roundFor(metric, mean), unit: unitLabel(locale, metric), warn: limits.warn, severe: limits.severe };
    const key = mean === undefined ? 'rule.alarm.nodata' : level === 'severe' ? 'rule.alarm.severe' : level === 'warn' ? 'rule.alarm.warn' : 'rule.alarm.none';
    alarms.push({ metric, level, text: t(locale, key, p) });
  }

  const ban = earthworkBanReason(f.now, f.timeZone, s.alertLevel as AlertLevel, r.earthworkBan);
  const period = r.earthworkBan.periods[0];
  const window = { from: period ? formatMonthDay(locale, period.from) : '–', to: period ? formatMonthDay(locale, period.to) : '–' };
  const alertName = t(locale, `alert.${s.alertLevel}`);
  const earthwork = {
    banned: ban !== null,
    text: ban === 'ban_period' ? t(locale, 'rule.earthwork.ban_period', window) : ban === 'alert_level' ? t(locale, 'rule.earthwork.alert_level', { level: alertName }) : t(locale, 'rule.earthwork.none', window),
  };
  const alert = s.alertLevel === 'none' ? t(locale, 'rule.alert.none') : t(locale, 'rule.alert.level', { level: alertName });
  return { sprinkling, sweeping, alarms, earthwork, alert };
}
