/**
 * The sentence a person reads for an event (`text` beside its machine fields, in `gateway.locale`).
 * Every event type has one in every catalog (test/unit/i18n.test.ts).
 */
import type { DustgateEvent } from './contract.js';
import { formatNumber, has, metricLabel, t, unitLabel, type Locale } from './i18n.js';
import { roundFor } from './metrics.js';

type AnyEvent = DustgateEvent extends infer E ? (E extends unknown ? Omit<E, 'ts'> : never) : never;

/** A reason code in words (codes the catalog does not know: the code). */
export function reasonText(locale: Locale, reason: string): string {
  if (reason.startsWith('remote:')) return t(locale, 'reason.remote', { by: reason.slice(7) });
  if (reason.startsWith('dust_alarm_')) return t(locale, 'reason.dust_alarm_metric', { metric: metricLabel(locale, reason.slice(11)) });
  return has(locale, `reason.${reason}`) ? t(locale, `reason.${reason}`) : reason;
}

const word = (locale: Locale, group: string, v: unknown) => (has(locale, `${group}.${String(v)}`) ? t(locale, `${group}.${String(v)}`) : String(v));

export function eventText(locale: Locale, e: AnyEvent): string {
  const T = (key: string, p: Record<string, unknown> = {}) => t(locale, `event.${key}`, p);
  switch (e.type) {
    case 'alert_level':
      return T('alert_level', { level: word(locale, 'alert', e.level), from: word(locale, 'alert', e.from) });
    case 'output_changed':
      return T(`output_changed.${e.state}`, { output: e.output, reason: reasonText(locale, e.reason) });
    case 'video_trigger':
      return T('video_trigger', { input: e.input });
    case 'sprinkler_stopped':
    case 'sprinkler_blocked': {
      const variant = e.reason === 'temperature_unknown' || e.temperature === null ? 'temperature_unknown' : 'temperature_below_min';
      const by = e.type === 'sprinkler_blocked' ? reasonText(locale, e.requestedBy) : undefined;
      return T(`${e.type}.${variant}`, { output: e.output, t: e.temperature, limit: e.limit, unit: unitLabel(locale, 'temperature', '°C'), by });
    }
    case 'sweeping_stopped':
    case 'sweeping_allowed':
      return T(e.type, { mean: roundFor('windSpeed', e.windMean), level: e.beaufort });
    case 'dust_alarm': {
      const name = e.metric === 'noise' && e.period ? t(locale, 'rule.alarm.noiseName', { period: t(locale, `period.${e.period}`) }) : metricLabel(locale, e.metric);
      return T(`dust_alarm.${e.state}`, { metric: name, value: roundFor(e.metric, e.value), unit: unitLabel(locale, e.metric), threshold: e.threshold, level: word(locale, 'level', e.level) });
    }
    case 'earthwork_violation':
      return T(`earthwork_violation.${e.reason === 'alert_level' ? 'alert_level' : 'ban_period'}`, { input: e.input, level: word(locale, 'alert', e.alertLevel) });
    case 'device_status':
      return T('device_status', { device: e.device, status: word(locale, 'status', e.status) });
    case 'output_fault':
      return T(`output_fault.${e.reason}`, { output: e.output, wanted: word(locale, 'onoff', e.wanted), actual: word(locale, 'onoff', e.actual === true ? 'on' : e.actual === false ? 'off' : (e.actual ?? 'unknown')) });
    case 'output_unmapped':
      return T('output_unmapped', { output: e.output, device: e.device, channel: e.channel });
    case 'buffer_overflow':
      return T('buffer_overflow', { maxMB: e.maxMB, n: e.evictedTelemetry + e.evictedEvents });
    case 'storage_error':
      return T('storage_error', { code: e.code ?? '?', hint: has(locale, `storage.hint.${e.code}`) ? t(locale, `storage.hint.${e.code}`) : t(locale, 'storage.hint.other') });
    case 'storage_recovered':
      return T('storage_recovered', { n: e.droppedTelemetry + e.droppedEvents });
    case 'clock_step':
      return T(`clock_step.${e.action}`, { d: formatNumber(locale, e.deltaS, 1) });
    case 'clock_set':
      return T('clock_set', { d: formatNumber(locale, e.deltaS, 1) });
    case 'remote_accepted':
      return T('remote_accepted', { command: e.command });
    case 'remote_refused':
      return T('remote_refused', { command: e.command, reason: e.reason });
  }
}
