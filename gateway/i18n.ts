/**
 * Words for people: one message catalog per language (`gateway/locales/<locale>.json`, flat keys,
 * `{{name}}` placeholders as in i18next's JSON format, so translation tools read them), numbers,
 * dates and times through the Intl built into Node (full ICU), in the site's time zone.
 *
 * Machine-readable fields (event `type`, `reason` codes, JSON keys, metric names, topics) never
 * come from here: only the `text` a person reads does.
 */
import en from './locales/en.json';
import zhCN from './locales/zh-CN.json';

export const LOCALES = ['zh-CN', 'en'] as const;
export type Locale = (typeof LOCALES)[number];
export type MessageKey = keyof typeof en;

const CATALOGS: Record<Locale, Record<string, string>> = { en, 'zh-CN': zhCN };

export const isLocale = (s: unknown): s is Locale => (LOCALES as readonly unknown[]).includes(s);

/** The catalog of a locale (both have the same keys: test/unit/i18n.test.ts). */
export function catalog(locale: Locale): Readonly<Record<string, string>> {
  return CATALOGS[locale];
}

const numberFormats = new Map<string, Intl.NumberFormat>();
/** A number in the locale's format, with at most `decimals` decimals (default 2). */
export function formatNumber(locale: Locale, v: number, decimals = 2): string {
  const k = `${locale}/${decimals}`;
  let f = numberFormats.get(k);
  if (!f) numberFormats.set(k, (f = new Intl.NumberFormat(locale, { maximumFractionDigits: decimals, useGrouping: false })));
  return f.format(v);
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();
/** A wall-clock time (and the date with `withDate`) in the locale's format and the site's zone. */
export function formatTime(locale: Locale, ms: number, timeZone: string, withDate = false): string {
  const k = `${locale}/${timeZone}/${withDate}`;
  let f = timeFormats.get(k);
  if (!f) timeFormats.set(k, (f = new Intl.DateTimeFormat(locale, { timeZone, ...(withDate ? { dateStyle: 'short' } : {}), timeStyle: 'medium', hourCycle: 'h23' })));
  return f.format(ms);
}

/** "11-15" → 11月15日 / November 15. */
export function formatMonthDay(locale: Locale, mmdd: string): string {
  const [m, d] = mmdd.split('-').map(Number);
  return new Intl.DateTimeFormat(locale, { month: 'long', day: 'numeric', timeZone: 'UTC' }).format(Date.UTC(2001, (m ?? 1) - 1, d ?? 1));
}

/** Fill `{{name}}` placeholders; numbers in the locale's format. */
export function interpolate(locale: Locale, text: string, params: Record<string, unknown> = {}): string {
  return text.replace(/\{\{\s*(\w+)\s*\}\}/g, (whole, name: string) => {
    const v = params[name];
    if (v === undefined || v === null) return name in params ? '–' : whole;
    return typeof v === 'number' ? formatNumber(locale, v) : String(v);
  });
}

/** The text of `key` in `locale` (the English one, then the key itself, when missing). */
export function t(locale: Locale, key: MessageKey | (string & {}), params?: Record<string, unknown>): string {
  const text = CATALOGS[locale][key] ?? CATALOGS.en[key];
  if (text === undefined) return key;
  const out = interpolate(locale, text, params);
  // Chinese typography: no space after full-width punctuation (a filled-in name may end with one)
  return locale === 'zh-CN' ? out.replace(/([，。：；）」])[ \t]+/g, '$1') : out;
}

/** Whether a key exists (for optional texts such as a reason code's words). */
export const has = (locale: Locale, key: string): boolean => CATALOGS[locale][key] !== undefined;

export type Translate = (key: MessageKey | (string & {}), params?: Record<string, unknown>) => string;
export const translator = (locale: Locale): Translate => (key, params) => t(locale, key, params);

/**
 * The CLI's language: `--lang`, else the POSIX order LC_ALL, LC_MESSAGES, LANG (an empty variable
 * counts as unset); Chinese for any zh locale (zh_CN.UTF-8, zh_TW…), English otherwise (C, POSIX, en_US…).
 */
export function localeFromEnv(env: NodeJS.ProcessEnv = process.env, flag?: string): Locale {
  const pick = (v: string | undefined) => (v && v.trim() ? v.trim() : undefined);
  const raw = pick(flag) ?? pick(env.LC_ALL) ?? pick(env.LC_MESSAGES) ?? pick(env.LANG) ?? 'C';
  return /^zh/i.test(raw) ? 'zh-CN' : 'en';
}

/** A metric's name for people (a metric without one in the catalog: its own name). */
export function metricLabel(locale: Locale, metric: string): string {
  return has(locale, `metric.${metric}`) ? t(locale, `metric.${metric}`) : metric;
}

/** A metric's unit for people (℃ in Chinese), falling back to the catalog unit. */
export function unitLabel(locale: Locale, metric: string, fallback = ''): string {
  return has(locale, `unit.${metric}`) ? t(locale, `unit.${metric}`) : fallback;
}

/** A duration in seconds as people say it: 2 分钟 / 2 min, 45 秒 / 45 s, 1.5 小时 / 1.5 h. */
export function formatDuration(locale: Locale, s: number): string {
  if (s >= 3600 && s % 360 === 0) return t(locale, 'dur.h', { n: s / 3600 });
  if (s >= 60 && s % 6 === 0) return t(locale, 'dur.min', { n: s / 60 });
  return t(locale, 'dur.s', { n: s });
}
