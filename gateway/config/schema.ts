/**
 * The site config (SPEC §3) as a zod schema. Unknown keys are errors everywhere; cross-references
 * (buses, devices, channels, sources) are checked after the shape, so every error names its path.
 */
import { z } from 'zod';
import { DRIVER_NAMES } from '../../drivers/devices/index.js';
import { isMetric, metricNames } from '../metrics.js';
import { PERMISSIONS } from '../contract.js';
import { ALERT_LEVELS, RulesSchema } from '../rules/schema.js';
import { numIn, oneOf, show, str } from '../zod-fields.js';

// where they are defined now (config/ depends on rules/, never the other way round)
export { METRICS, type Metric } from '../metrics.js';
import type { Metric } from '../metrics.js';
export { ALERT_LEVELS, AlertProfileSchema, RulesSchema, deepPartial, type AlarmLevels, type AlertLevel, type Rules } from '../rules/schema.js';
export { numIn } from '../zod-fields.js';

// ------------------------------------------------------------------ buses, devices, io

const id = str('an id').regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'expected an id: a letter, then letters, digits, - or _ (up to 64)');
const parity = oneOf(['none', 'even', 'odd']);
const timeoutMs = numIn(10, 60_000).optional();
const baudRate = numIn(300, 1_000_000).optional();
const host = str('a host name or address').min(1, 'expected a host name or address');
const port = numIn(1, 65_535);

export const BusSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ id, type: z.literal('rtu'), path: str('a serial port path'), baudRate, parity: parity.optional(), dataBits: z.union([z.literal(7), z.literal(8)]).optional(), stopBits: z.union([z.literal(1), z.literal(2)]).optional(), timeoutMs }),
    z.strictObject({ id, type: z.literal('tcp'), host, port, timeoutMs }),
    z.strictObject({ id, type: z.literal('rtu-over-tcp'), host, port, baudRate, timeoutMs }),
    z.strictObject({ id, type: z.literal('serial'), path: str('a serial port path'), baudRate, parity: parity.optional(), timeoutMs }),
    z.strictObject({ id, type: z.literal('firmata'), path: str('a serial port path'), timeoutMs }),
  ],
  { error: (iss) => `expected type rtu | tcp | rtu-over-tcp | serial | firmata, got ${show((iss.input as { type?: unknown } | undefined)?.type)}` },
);
export type BusSettings = z.infer<typeof BusSchema>;

const registerSpec = z.strictObject({
  metric: str('a metric name'),
  fn: z.union([z.literal(3), z.literal(4)]).optional(),
  address: numIn(0, 65_535),
  type: oneOf(['u16', 's16', 'u32', 's32', 'f32']).optional(),
  wordOrder: oneOf(['be', 'le']).optional(),
  scale: z.number().optional(),
  unit: z.string().optional(),
});

const pinSpec = z.strictObject({
  pin: numIn(0, 127),
  mode: oneOf(['relay', 'input']),
  /** relays: NO drives the pin HIGH for on, NC drives it LOW */
  type: oneOf(['NO', 'NC']).optional(),
  /** inputs: the board's pull-up on (a button to ground) */
  pullup: z.boolean().optional(),
  /** inputs: LOW means active; default true with pullup */
  activeLow: z.boolean().optional(),
});

/** What of a device's polls goes to the uplink (gateway/report-filter.ts; docs/config.md "Report strategies"). */
const reportRule = {
  strategy: oneOf(['every', 'onChange', 'interval']).optional(),
  /** onChange: send when the value moved at least this much (absolute, in the metric's unit) */
  deadband: numIn(0, 1e9, false).optional(),
  /** onChange: send when the value moved at least this percentage of the value last sent */
  deadbandPct: numIn(0, 1000, false).optional(),
  /** interval: one value per this many seconds */
  intervalS: numIn(1, 86_400).optional(),
  /** interval: which value of the window */
  aggregate: oneOf(['latest', 'mean', 'min', 'max']).optional(),
  /** onChange: send at least this often, changed or not */
  heartbeatS: numIn(1, 86_400).optional(),
};
const ReportSchema = z.strictObject({ ...reportRule, metrics: z.record(str('a metric or channel'), z.strictObject(reportRule)).optional() });

export const DeviceSchema = z.strictObject({
  id,
  bus: str('a bus id'),
  unit: numIn(1, 247).optional(),
  driver: oneOf(DRIVER_NAMES as [string, ...string[]]),
  pollMs: numIn(50, 3_600_000).default(1000),
  offlineAfter: numIn(1, 100).default(3),
  timeoutMs,
  /** Measurement range per metric: a value outside it is flagged T (over range). */
  ranges: z.record(str(), z.tuple([z.number(), z.number()])).refine((o) => Object.keys(o).length <= 64, 'expected at most 64 ranges').optional(),
  /** generic-modbus only */
  registers: z.array(registerSpec).max(256, 'expected at most 256 registers').optional(),
  coils: numIn(1, 64).optional(),
  discreteInputs: numIn(1, 64).optional(),
  /** firmata-io only: channel n is pins[n-1] */
  pins: z.array(pinSpec).min(1, 'expected at least one pin').max(64).optional(),
  /** firmata-io only: the pin of the status light */
  statusLed: numIn(0, 127).optional(),
  /** report strategy of its telemetry (default: every poll for sensors; relays and inputs on change with a 300 s heartbeat) */
  report: ReportSchema.optional(),
});
export type DeviceSettings = z.infer<typeof DeviceSchema>;

export const OutputSchema = z.strictObject({
  device: str('a device id'),
  channel: numIn(1, 64),
  /** Sprinkler outputs only: the frost limit differs (road 4 °C, greenbelt 5 °C). */
  kind: oneOf(['road', 'greenbelt']).optional(),
  /** A pulse output (camera trigger): on for pulseMs, then off. */
  pulseMs: numIn(10, 60_000).optional(),
  maxOnS: numIn(1, 86_400).optional(),
  minOffS: numIn(0, 86_400).optional(),
});
export type OutputSettings = z.infer<typeof OutputSchema>;

export const InputSchema = z.strictObject({
  device: str('a device id'),
  channel: numIn(1, 64),
  kind: oneOf(['video-trigger', 'earthwork-activity']),
  debounceMs: numIn(0, 60_000).default(50),
});
export type InputSettings = z.infer<typeof InputSchema>;

// ------------------------------------------------------------------ the whole file

const secret = z.string().default('');
/** One HJ 212 platform (SPEC §9). `name` keys its upload queue in the store: the first defaults to `hj212`. */
export const Hj212PlatformSchema = z.strictObject({
  name: id.optional(),
  enabled: z.boolean().default(false),
  host: z.string().default(''),
  port: numIn(0, 65_535).default(0),
  st: numIn(0, 99).default(39),
  pw: z.string().default('123456'),
  mn: z.string().default(''),
  version: z.preprocess((v) => (typeof v === 'number' ? String(v) : v), oneOf(['2017', '2005'])).default('2017'),
  rtdIntervalS: numIn(1, 86_400).default(60),
  minIntervalMin: numIn(1, 60).default(1),
  ackRequired: z.boolean().default(true),
  /** Reconnect backoff ceiling (full jitter under it). */
  reconnectMaxS: numIn(1, 3600).default(60),
});
export type Hj212Platform = z.infer<typeof Hj212PlatformSchema>;

/** The platform's name: its own, else `hj212` for the first and `hj212-<n>` for the others. */
export const platformName = (p: { name?: string }, i: number): string => p.name ?? (i === 0 ? 'hj212' : `hj212-${i + 1}`);

export const ConfigSchema = z.strictObject({
  gateway: z.strictObject({
    id: str('an id').regex(/^[a-z0-9-]{3,64}$/, 'expected 3..64 characters of a-z, 0-9 and -'),
    preset: str('a preset name').default('henan-2017'),
    site: z
      .strictObject({ name: z.string().default(''), kind: oneOf(['construction', 'road']).default('construction'), city: z.string().default(''), grid: z.string().default('') })
      .prefault({}),
    /** IANA zone for night hours and ban dates; default: the preset's (Asia/Shanghai for henan-2017). */
    timezone: z.string().optional(),
    /** language of the page and of events' `text`: zh-CN | en; default: the preset's (zh-CN for henan-2017), else en */
    locale: oneOf(['zh-CN', 'en']).optional(),
  }),
  buses: z.array(BusSchema).max(64, 'expected at most 64 buses').default([]),
  devices: z.array(DeviceSchema).max(512, 'expected at most 512 devices').default([]),
  outputs: z.record(id, OutputSchema).refine((o) => Object.keys(o).length <= 256, 'expected at most 256 outputs').default({}),
  inputs: z.record(id, InputSchema).refine((o) => Object.keys(o).length <= 256, 'expected at most 256 inputs').default({}),
  /** keys: metrics of the catalog (gateway/metrics.ts), checked when a config is parsed, so a metric added at start-up is known */
  sources: z
    .record(z.string(), str('a device id'))
    .superRefine((o, ctx) => {
      for (const k of Object.keys(o)) if (!isMetric(k)) ctx.addIssue({ code: 'custom', path: [k], message: `expected one of ${metricNames().join(' | ')}, got ${show(k)}` });
    })
    .default({}) as unknown as z.ZodDefault<z.ZodType<Partial<Record<Metric, string>>>>,
  rules: RulesSchema,
  storage: z
    .strictObject({
      path: z.string().default('./data/buffer.db'),
      maxMB: numIn(0.01, 1_000_000, false).default(512),
      durability: oneOf(['normal', 'full']).default('normal'),
      /** readings are written together every commitMs (one transaction: SD card wear), each held first until its poll cycle ends (≤ 250 ms); 0 writes each at once */
      commitMs: numIn(0, 10_000).default(1000),
    })
    .prefault({}),
  mqtt: z
    .strictObject({
      url: str('a URL').regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'expected a URL mqtt://host:port or mqtts://host:port').default('mqtt://127.0.0.1:1883'),
      username: z.string().default(''),
      password: secret,
      ca: z.string().default(''),
      cert: z.string().default(''),
      key: z.string().default(''),
      topicPrefix: str().regex(/^[^#+]+$/, 'expected a topic prefix without + or #').default('dustgate'),
      group: z.string().regex(/^[^/#+]*$/, 'expected a group name without /, + or #').default(''),
      maxBatch: numIn(1, 10_000).default(500),
      /** Messages in flight (waiting for their PUBACK) at once. */
      maxInFlight: numIn(1, 1000).default(16),
      /** Ceiling on records sent per second (the drain after an outage; a second's worth may go at once); 0: none. */
      maxPerS: numIn(0, 1_000_000).default(5000),
      /** Reconnect backoff ceiling. */
      reconnectMaxS: numIn(1, 3600).default(30),
      /**
       * Keep a batch the broker had no subscriber for (MQTT 5 PUBACK reason 0x10) and send it again
       * later: for fleets whose consumer (`dustgate ingest`) must see every reading. Speaks MQTT 5.
       */
      requireSubscriber: z.boolean().default(false),
      enabled: z.boolean().default(true),
    })
    .prefault({}),
  aqi: z.strictObject({ standard: oneOf(['hj633-2026', 'hj633-2012']).default('hj633-2026') }).prefault({}),
  /** HJ 212 platforms: one entry each (environment, housing and construction…); a single object is still accepted */
  hj212: z.preprocess((v) => (v === undefined || Array.isArray(v) ? v : [v]), z.array(Hj212PlatformSchema).max(8, 'expected at most 8 platforms')).default([]),
  http: z.strictObject({ bind: z.string().default('127.0.0.1'), port: numIn(0, 65_535).default(8080), token: secret }).prefault({}),
  remote: z
    .strictObject({
      hmacKey: secret,
      maxSkewS: numIn(1, 86_400).default(300),
      /** Remote messages admitted per second (a burst of twice as many); the rest are refused with a result. */
      maxPerS: numIn(1, 1000).default(20),
      /** Admitted messages waiting to be handled; beyond this they are refused with a result. */
      maxQueue: numIn(1, 10_000).default(100),
      allow: z.array(oneOf(PERMISSIONS)).max(PERMISSIONS.length, `expected at most the ${PERMISSIONS.length} commands`).default([...PERMISSIONS]),
    })
    .prefault({}),
});
export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
