/**
 * The uplinks a config asks for, built and wired: MQTT (records, and the remote-operations channel)
 * and HJ 212 (aggregates). A new uplink is built here and joins `Gateway.uplinks`.
 */
import type { Config, Metric } from './config/schema.js';
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

export function hj212Uplink(
  gw: UplinkHost,
  c: Config,
  o: { timeZone: string; sources: Partial<Record<Metric, string>>; latest: () => Record<string, { v: number; flag: Flag }> },
): Hj212Uplink {
  return new Hj212Uplink({ cfg: c.hj212, mn: c.hj212.mn || c.gateway.id, aggregates: gw.store.aggs, queue: gw.store.uploads('hj212'), now: gw.now, logger: gw.logger, ...o });
}
