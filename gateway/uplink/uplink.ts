/**
 * What every uplink is to the gateway. An uplink consumes what it sends from the store itself:
 * - `takes: 'records'`: it reads the record buffer through its own cursor (`nextBatch(after)`), is
 *   registered as a consumer, and acknowledges ranges with its name; a record leaves the buffer
 *   only when every records uplink has acknowledged it (MQTT).
 * - `takes: 'aggregates'`: closed periods are handed to `onAggregates`; it queues them in its own
 *   upload queue (`store.uploads(name)`) and marks each acknowledged itself (HJ 212).
 *
 * Adding an uplink: a class implementing this in gateway/uplink/ (or its own folder), its config
 * section in gateway/config/schema.ts, and one line where gateway.ts builds the uplinks.
 */
import type { Aggregate } from '../aggregates.js';

export interface Uplink {
  /** unique per gateway: the consumer name in the buffer, the queue name, the `link` label on /metrics */
  readonly name: string;
  readonly takes: 'records' | 'aggregates';
  readonly connected: boolean;
  start(): void;
  stop(o?: { quiet?: boolean }): Promise<void>;
  /** records uplinks: new records are in the buffer */
  pumpSoon?(): void;
  /** aggregates uplinks: periods closed */
  onAggregates?(list: Aggregate[]): void;
  /** called on the gateway's tick (real-time sends) */
  tick?(now: number): void;
  readonly counters: Readonly<Record<string, number>>;
}
