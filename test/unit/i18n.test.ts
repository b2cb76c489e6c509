/**
 * The message catalogs: the same keys and placeholders in every language, text for every event type
 * in both, the rule sentences as the regulation says them, and the CLI's choice of language.
 */
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES, type DustgateEvent, type EventType } from '../../gateway/contract.js';
import { resolveConfig } from '../../gateway/config/load.js';
import { eventText } from '../../gateway/event-text.js';
import { catalog, localeFromEnv, LOCALES, type Locale } from '../../gateway/i18n.js';
import { explainRules, type RuleFacts } from '../../gateway/rule-explain.js';

const CJK = /[\u4e00-\u9fff]/;
const placeholders = (s: string) => [...s.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]).sort();

describe('message catalogs', () => {
  it('zh-CN and en have the same keys, each with the same placeholders, none empty', () => {
    const [zh, en] = [catalog('zh-CN'), catalog('en')];
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    expect(Object.keys(en).length).toBeGreaterThan(200);
    for (const k of Object.keys(en)) {
      expect(placeholders(zh[k]!), k).toEqual(placeholders(en[k]!));
      expect(zh[k]!.trim(), k).not.toBe('');
      expect(en[k]!.trim(), k).not.toBe('');
    }
  });

  it('the Chinese catalog is Chinese: every sentence a person reads (events, rules, doctor, CLI, scan, page) has Chinese in it', () => {
    const zh = catalog('zh-CN');
    // names and formats that are the same in both languages
    const technical = new Set(['demo.broker', 'scan.rel.pm25-pm10', 'scan.rel.pm-order', 'page.listSep', 'page.sentenceSep', 'doctor.broker.fail', 'doctor.hj212.fail', 'doctor.name.hj212', 'page.header', 'page.otherLang', 'page.col.rtt', 'page.buf.hj212', 'scan.paste']);
    const sentences = Object.keys(zh).filter((k) => /^(event|rule|doctor|cli\.(hint|desc|opt)|scan|lan|page)\./.test(k) && !technical.has(k));
    expect(sentences.length).toBeGreaterThan(150);
    expect(sentences.filter((k) => !CJK.test(zh[k]!))).toEqual([]);
  });
});

/** One event of each type, with the fields its type has. */
const SAMPLES: { [T in EventType]: (DustgateEvent & { type: T })[] } = {
  alert_level: [{ ts: 0, type: 'alert_level', level: 'orange', from: 'none' }],
  output_changed: [
    { ts: 0, type: 'output_changed', output: 'sprinkler', state: 'on', reason: 'dust_alarm', forS: 600 },
    { ts: 0, type: 'output_changed', output: 'sprinkler', state: 'off', reason: 'remote:op-1' },
    { ts: 0, type: 'output_changed', output: 'cameraTrigger', state: 'on', reason: 'dust_alarm_pm10' },
  ],
  video_trigger: [{ ts: 0, type: 'video_trigger', input: 'gateCamera', edgeAt: '2026-12-02T00:00:00.000Z' }],
  sprinkler_stopped: [
    { ts: 0, type: 'sprinkler_stopped', output: 'sprinkler', reason: 'temperature_below_min', temperature: 3.5, limit: 4 },
    { ts: 0, type: 'sprinkler_stopped', output: 'sprinkler', reason: 'temperature_unknown', temperature: null, limit: 4 },
  ],
  sprinkler_blocked: [
    { ts: 0, type: 'sprinkler_blocked', output: 'sprinkler', reason: 'temperature_below_min', requestedBy: 'remote:op-1', temperature: 3.5, limit: 4 },
    { ts: 0, type: 'sprinkler_blocked', output: 'sprinkler', reason: 'temperature_unknown', requestedBy: 'dust_alarm', temperature: null, limit: 4 },
  ],
  sweeping_stopped: [{ ts: 0, type: 'sweeping_stopped', beaufort: 3, windMean: 3.62 }],
  sweeping_allowed: [{ ts: 0, type: 'sweeping_allowed', beaufort: 2, windMean: 2.1 }],
  dust_alarm: [
    { ts: 0, type: 'dust_alarm', state: 'raised', level: 'warn', metric: 'pm10', value: 161.23, threshold: 150 },
    { ts: 0, type: 'dust_alarm', state: 'escalated', level: 'severe', metric: 'pm10', value: 212, threshold: 200 },
    { ts: 0, type: 'dust_alarm', state: 'cleared', level: 'none', metric: 'noise', value: 50, threshold: 52, period: 'night' },
  ],
  earthwork_violation: [
    { ts: 0, type: 'earthwork_violation', input: 'earthwork', reason: 'ban_period', alertLevel: 'none' },
    { ts: 0, type: 'earthwork_violation', input: 'earthwork', reason: 'alert_level', alertLevel: 'red' },
  ],
  device_status: [{ ts: 0, type: 'device_status', device: 'head', status: 'offline' }],
  output_fault: [
    { ts: 0, type: 'output_fault', output: 'sprinkler', wanted: 'off', actual: 'unknown', reason: 'no_confirmation' },
    { ts: 0, type: 'output_fault', output: 'sprinkler', wanted: 'off', actual: null, reason: 'write_failed', error: 'timeout' },
    { ts: 0, type: 'output_fault', output: 'sprinkler', wanted: 'off', actual: true, reason: 'state_mismatch' },
  ],
  output_unmapped: [{ ts: 0, type: 'output_unmapped', output: 'sprinkler', device: 'relays', channel: 1, reason: 'config_changed', was: 'on', state: 'off' }],
  buffer_overflow: [{ ts: 0, type: 'buffer_overflow', evictedTelemetry: 120, evictedEvents: 0, totalEvicted: 120, maxMB: 64 }],
  storage_error: [{ ts: 0, type: 'storage_error', code: 'disk_full', message: 'SQLITE_FULL', path: './data/buffer.db', hint: 'free space' }],
  storage_recovered: [{ ts: 0, type: 'storage_recovered', failingSince: '2026-12-02T00:00:00.000Z', droppedTelemetry: 10, droppedEvents: 0 }],
  clock_step: [
    { ts: 0, type: 'clock_step', deltaS: -3600, action: 'held' },
    { ts: 0, type: 'clock_step', deltaS: 12.5, action: 'followed' },
  ],
  clock_set: [{ ts: 0, type: 'clock_set', source: 'hj212', deltaS: 30, platformTime: '20261202000000', ntp: 'unsynced' }],
  remote_accepted: [{ ts: 0, type: 'remote_accepted', requestId: 'r1', topic: 'dustgate/x/cmd/alert', command: 'alert' }],
  remote_refused: [{ ts: 0, type: 'remote_refused', requestId: 'r2', topic: 'dustgate/x/cmd/output', command: 'output', code: 'bad_signature', reason: 'signature does not match' }],
};

describe('event texts', () => {
  it('every event type (and every variant) has a finished sentence in both languages', () => {
    for (const type of EVENT_TYPES) {
      expect(SAMPLES[type].length, type).toBeGreaterThan(0);
      for (const e of SAMPLES[type]) {
        for (const locale of LOCALES) {
          const text = eventText(locale, e);
          expect(text, `${type} ${locale}`).not.toMatch(/\{\{|event\.|undefined|NaN/);
          expect(text.length, `${type} ${locale}`).toBeGreaterThan(8);
          if (locale === 'zh-CN') expect(text, type).toMatch(CJK);
          else expect(text, type).not.toMatch(CJK);
        }
      }
    }
  });

  it('says the values with their limits, in each language', () => {
    expect(eventText('zh-CN', SAMPLES.sprinkler_stopped[0]!)).toBe('气温 3.5 ℃ 低于 4 ℃，sprinkler 停止洒水');
    expect(eventText('en', SAMPLES.sprinkler_stopped[0]!)).toBe('Temperature 3.5 °C is below 4 °C: sprinkler stopped sprinkling');
    expect(eventText('zh-CN', SAMPLES.dust_alarm[1]!)).toBe('PM10 均值 212 µg/m³，超过 200，升级为严重');
    expect(eventText('zh-CN', SAMPLES.dust_alarm[0]!)).toBe('PM10 均值 161.2 µg/m³，超过 150，预警');
    expect(eventText('zh-CN', SAMPLES.sweeping_stopped[0]!)).toBe('平均风速 3.6 m/s（3 级），停止人工清扫');
    expect(eventText('zh-CN', SAMPLES.output_changed[2]!)).toBe('cameraTrigger 已打开：扬尘报警（PM10）');
  });
});

describe('rule explanations', () => {
  const loaded = resolveConfig({ gateway: { id: 'zz-site-0001' }, outputs: {}, storage: { path: '/tmp/x.db' } });
  const facts = (over: Partial<RuleFacts['snapshot']>, means: RuleFacts['means'] = {}, now = Date.parse('2026-12-02T04:00:00Z')): RuleFacts => ({
    snapshot: {
      sprinkling: { allowed: true, reason: null, on: false, temperature: 12 },
      sweeping: { allowed: true, beaufort: 1, windMean: 1 },
      alarms: { pm10: 'none', pm25: 'none', noise: 'none' },
      alertLevel: 'none',
      ...over,
    },
    rules: loaded.config.rules,
    means,
    outputs: { sprinkler: { kind: 'road' } },
    now,
    timeZone: 'Asia/Shanghai',
  });

  it('in the regulation\'s words, with the threshold and the live value', () => {
    const zh = explainRules('zh-CN', facts({ sprinkling: { allowed: false, reason: 'temperature_below_min', on: false, temperature: 3.5 }, sweeping: { allowed: false, beaufort: 3, windMean: 3.62 }, alarms: { pm10: 'severe', pm25: 'none', noise: 'none' } }, { pm10: 212, pm25: 40, noise: 58 }));
    expect(zh.sprinkling).toBe('气温 3.5 ℃ 低于 4 ℃，停止洒水');
    expect(zh.sweeping).toBe('2 分钟平均风速 3.6 m/s（3 级），停止人工清扫');
    expect(zh.alarms.find((a) => a.metric === 'pm10')!.text).toBe('PM10 5 分钟均值 212 µg/m³，超过 200，严重');
    expect(zh.alarms.find((a) => a.metric === 'pm25')!.text).toBe('PM2.5 5 分钟均值 40 µg/m³，正常（预警线 75）');
    expect(zh.alarms.find((a) => a.metric === 'noise')!.text).toBe('噪声（昼间）5 分钟均值 58 dB(A)，正常（预警线 70）');
    expect(zh.earthwork).toEqual({ banned: true, text: '封土期（11月15日至3月15日），禁止土方作业' });
    expect(zh.alert).toBe('无重污染天气预警');
    const en = explainRules('en', facts({ sprinkling: { allowed: false, reason: 'temperature_below_min', on: false, temperature: 3.5 } }));
    expect(en.sprinkling).toBe('Temperature 3.5 °C is below 4 °C: no sprinkling');
  });

  it('unknown temperature, sweeping waiting to resume, night noise, no ban in June, an orange alert', () => {
    const june = Date.parse('2026-06-10T15:00:00Z'); // 23:00 in Shanghai: night
    const zh = explainRules('zh-CN', facts({ sprinkling: { allowed: false, reason: 'temperature_unknown', on: false, temperature: null }, sweeping: { allowed: false, beaufort: 2, windMean: 2.2 }, alertLevel: 'orange' }, { noise: 57 }, june));
    expect(zh.sprinkling).toBe('5 分钟内没有气温读数，停止洒水，读数恢复后自动解除');
    expect(zh.sweeping).toBe('2 分钟平均风速 2.2 m/s（2 级），已低于 3 级，持续 10 分钟后恢复清扫');
    expect(zh.alarms.find((a) => a.metric === 'noise')!.text).toBe('噪声（夜间）5 分钟均值 57 dB(A)，正常（预警线 55）');
    expect(zh.earthwork).toEqual({ banned: true, text: '橙色预警期间禁止土方作业' });
    expect(zh.alert).toBe('重污染天气橙色预警，执行更严格的扬尘管控');
    const none = explainRules('en', facts({}, {}, june));
    expect(none.earthwork).toEqual({ banned: false, text: 'No earthwork ban now (ban November 15 to March 15)' });
  });
});

describe('the CLI\'s language', () => {
  const cases: [NodeJS.ProcessEnv, string | undefined, Locale][] = [
    [{ LANG: 'zh_CN.UTF-8' }, undefined, 'zh-CN'],
    [{ LANG: 'C' }, undefined, 'en'],
    [{ LANG: 'en_US.UTF-8', LC_ALL: 'zh_CN.UTF-8' }, undefined, 'zh-CN'],
    [{ LANG: 'zh_CN.UTF-8', LC_ALL: '' }, undefined, 'zh-CN'],
    [{ LANG: 'zh_CN.UTF-8', LC_MESSAGES: 'C' }, undefined, 'en'],
    [{ LANG: 'zh_CN.UTF-8' }, 'en', 'en'],
    [{}, 'zh-CN', 'zh-CN'],
    [{}, undefined, 'en'],
  ];
  it.each(cases)('%j --lang %s → %s', (env, flag, want) => {
    expect(localeFromEnv(env, flag)).toBe(want);
  });
});
