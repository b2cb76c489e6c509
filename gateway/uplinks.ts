/**
 * The uplinks a config asks for, built and wired: MQTT (records, and the remote-operations channel)
 * and HJ 212 (aggregates). A new uplink is built here and joins `Gateway.uplinks`.
 */
import type { Clock } from './clock.js';
import { platformName, type Config, type Hj212Platform, type Metric } from './config/schema.js';
import type { DustgateEvent } from './contract.js';
import { Hj212Uplink } from './hj212/uplink.js';
import type { Logger } from './log.js';
import type { Flag } from './reading.js';
import type { RemoteHandler } from './remote.js';
import type { Store } from './store.js';
import { MqttUplink } from './uplink/mqtt.js';
import { VERSION } from './version.js';

export interface UplinkHost {
  readonly store: Store;
  readonly logger: Logger;
  readonly startedAt: string;
  readonly now: () => number;
  readonly uplink: MqttUplink | undefined;
  readonly remote: RemoteHandler | undefined;
  readonly clock: Clock;
  record(events: DustgateEvent[]): void;
}

/** The MQTT uplink; its remote topics are subscribed on every connect and handed to the remote handler. */
export function mqttUplink(gw: UplinkHost, c: Config): MqttUplink {
  const up = new MqttUplink({ mqtt: c.mqtt, gatewayId: c.gateway.id, store: gw.store, logger: gw.logger, version: VERSION, startedAt: gw.startedAt });
  const remote = gw.remote!;
  up.on('connect', () => up.subscribe(remote.topics()));
  up.on('message', (topic: string, payload: Buffer) => {
    if (up !== gw.uplink) return; // a replaced uplink's last messages
    try {
      remote.receive(topic, payload);
    } catch (e) {
      gw.logger.error({ topic, err: String(e) }, 'remote message failed');
    }
  });
  return up;
}

/** One uplink per enabled HJ 212 platform, each with its own connection and upload queue (one down never delays another). */
export function hj212Uplinks(
  gw: UplinkHost,
  c: Config,
  o: { timeZone: string; sources: Partial<Record<Metric, string>>; latest: () => Record<string, { v: number; flag: Flag }> },
): Hj212Uplink[] {
  return c.hj212.flatMap((p, i) => (p.enabled ? [hj212Uplink(gw, c, p, platformName(p, i), o)] : []));
}

function hj212Uplink(
  gw: UplinkHost,
  c: Config,
  p: Hj212Platform,
  name: string,
  o: { timeZone: string; sources: Partial<Record<Metric, string>>; latest: () => Record<string, { v: number; flag: Flag }> },
): Hj212Uplink {
  // a clock NTP has not set takes the platform's time (1013 → 1012), and says so in an event
  const setTime = (ms: number) => {
    const ntp = gw.clock.synced === false ? 'unsynced' : 'unknown';
    const delta = gw.clock.correct(ms);
    if (delta) {
      gw.logger.warn({ deltaS: delta / 1000, source: 'hj212' }, `clock set by the HJ 212 platform: ${delta > 0 ? '+' : ''}${Math.round(delta / 1000)} s`);
      gw.record([{ type: 'clock_set', ts: gw.now(), source: 'hj212', deltaS: Math.round(delta / 100) / 10, platformTime: new Date(ms).toISOString(), ntp }]);
    }
    return delta;
  };
  return new Hj212Uplink({ cfg: p, name, mn: p.mn || c.gateway.id, aggregates: gw.store.aggs, queue: gw.store.uploads(name), now: gw.now, logger: gw.logger.child({ platform: name }), clockSynced: () => gw.clock.synced, setTime, ...o });
}
