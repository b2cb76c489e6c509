/**
 * The MQTT contract (SPEC §8): every topic a gateway publishes or takes, and every event it
 * records, in one place. Producers (the rules, the gateway, remote operations, config apply, the
 * uplink) build events of these types; `dustgate remote` reads topics and events through the same
 * names. A leaf module: it imports nothing.
 */

// ---------------------------------------------------------------- topics

/** Topics under a gateway's prefix `P = <topicPrefix>/<gatewayId>`. */
export const TOPIC = {
  /** out, QoS 1: `{"gateway","readings":[…]}` from the record buffer */
  telemetry: 'telemetry',
  /** out, QoS 1: `{"gateway","events":[…]}` from the record buffer */
  events: 'events',
  /** out, retained: the rules' state, outputs, links, buffer */
  state: 'state',
  /** out, retained, last will: online / offline */
  status: 'status',
  /** out, retained: the effective config (secrets redacted) */
  config: 'config',
  /** out: closed minute / hour aggregates */
  aggregates: 'aggregates',
  /** in: a config patch or a whole config */
  configSet: 'config/set',
  /** out: the answer to config/set */
  configResult: 'config/result',
  /** out: the answer to cmd/<name> */
  cmdResult: 'cmd/result',
} as const;
export type Topic = (typeof TOPIC)[keyof typeof TOPIC];
export type ResultTopic = typeof TOPIC.configResult | typeof TOPIC.cmdResult;

/** The commands of `cmd/<name>` (SPEC §12). */
export const COMMANDS = ['output', 'alert', 'read', 'republish', 'ping', 'history'] as const;
export type CommandName = (typeof COMMANDS)[number];
/** What `remote.allow` may permit (`history` goes with `config`). */
export const PERMISSIONS = ['config', 'output', 'alert', 'read', 'republish', 'ping'] as const;

/** Topic names for a prefix (`mqtt.topicPrefix`). */
export const topics = {
  /** `<prefix>/<gateway>`: the gateway's own prefix P */
  base: (prefix: string, gatewayId: string) => `${prefix}/${gatewayId}`,
  /** `P/<sub>` */
  of: (prefix: string, gatewayId: string, sub: Topic | `cmd/${string}`) => `${prefix}/${gatewayId}/${sub}`,
  /** a command to one gateway (`name` may be `+`) */
  cmd: (prefix: string, gatewayId: string, name: string) => `${prefix}/${gatewayId}/cmd/${name}`,
  /** a command to every gateway under the prefix */
  cmdAll: (prefix: string, name: string) => `${prefix}/_all/cmd/${name}`,
  /** a command to the gateways of a group (`mqtt.group`) */
  cmdGroup: (prefix: string, group: string, name: string) => `${prefix}/_group/${group}/cmd/${name}`,
} as const;

// ---------------------------------------------------------------- events

type AlertLevelName = 'none' | 'blue' | 'yellow' | 'orange' | 'red';
type OutputActual = boolean | 'unknown' | 'on' | 'off' | null;
/** Who caused an event (remote operations). */
export type EventOrigin = { requestId?: string | null; by?: string; topic?: string };
type Extra = EventOrigin;

/** Every event a gateway records (its `ts` is ms here; stored and published as ISO time with a `seq`). */
export type DustgateEvent = { ts: number } & (
  | ({ type: 'alert_level'; level: AlertLevelName; from: AlertLevelName } & Extra)
  | ({ type: 'output_changed'; output: string; state: 'on' | 'off'; reason: string; forS?: number; maxOnS?: number } & Extra)
  | { type: 'video_trigger'; input: string; edgeAt: string }
  | { type: 'sprinkler_stopped'; output: string; reason: string; temperature: number | null; limit?: number }
  | ({ type: 'sprinkler_blocked'; output: string; reason: string; requestedBy: string; temperature: number | null; limit?: number } & Extra)
  | { type: 'sweeping_stopped' | 'sweeping_allowed'; beaufort: number | null; windMean: number }
  | { type: 'dust_alarm'; state: 'raised' | 'escalated' | 'cleared'; level: string; metric: string; value: number; threshold: number | undefined; period?: 'day' | 'night' }
  | { type: 'earthwork_violation'; input: string; reason: string; alertLevel: AlertLevelName }
  | { type: 'device_status'; device: string; status: string }
  | { type: 'output_fault'; output: string; wanted: 'on' | 'off'; actual: OutputActual; reason: 'no_confirmation' | 'write_failed' | 'state_mismatch'; error?: string; device?: string; channel?: number }
  | { type: 'output_unmapped'; output: string; device: string; channel: number; reason: string; was: string; state: string; requestId?: string }
  | { type: 'buffer_overflow'; evictedTelemetry: number; evictedEvents: number; totalEvicted: number; maxMB: number }
  | { type: 'storage_error'; code: string | null | undefined; message: string | null | undefined; path: string; hint: string }
  | { type: 'storage_recovered'; failingSince: string | number | null | undefined; droppedTelemetry: number; droppedEvents: number }
  | { type: 'clock_step'; deltaS: number; action: 'held' | 'followed' }
  | { type: 'clock_set'; source: 'hj212'; deltaS: number; platformTime: string; ntp: 'unsynced' | 'unknown' }
  | ({ type: 'remote_accepted'; requestId: string | null; topic: string; command: string; scope?: string; version?: number } & Extra)
  | ({ type: 'remote_refused'; requestId: string | null; topic: string; command: string; code: string; reason: string; scope?: string; version?: number; count?: number; requestIds?: (string | null)[] } & Extra)
);

export type EventType = DustgateEvent['type'];

/** Every event type, at run time (the union above and this list are checked against each other when compiling). */
export const EVENT_TYPES = [
  'alert_level', 'output_changed', 'video_trigger', 'sprinkler_stopped', 'sprinkler_blocked', 'sweeping_stopped', 'sweeping_allowed',
  'dust_alarm', 'earthwork_violation', 'device_status', 'output_fault', 'output_unmapped', 'buffer_overflow', 'storage_error',
  'storage_recovered', 'clock_step', 'clock_set', 'remote_accepted', 'remote_refused',
] as const satisfies readonly EventType[];
// a type in the union but not in the list fails to compile here
const _allListed: Exclude<EventType, (typeof EVENT_TYPES)[number]> extends never ? true : never = true;
void _allListed;

/** Events logged as warnings (the rest at info). */
export const WARN_EVENTS: ReadonlySet<EventType> = new Set<EventType>(['output_fault', 'sprinkler_blocked', 'buffer_overflow', 'remote_refused', 'storage_error', 'output_unmapped']);

/** An event as published (in `P/events`) and stored: ISO time, its seq, and `text`: the sentence a person reads, in gateway.locale (never parsed: the machine fields carry everything). */
export type PublishedEvent = Omit<DustgateEvent, 'ts'> & { ts: string; seq: number; text?: string };
