/**
 * What the gateway notices about its own footing, turned into events: the store failing or
 * recovering, the system clock stepping, the buffer evicting, devices coming and going, outputs
 * that do not do what they were told.
 */
import type { ClockStep } from './clock.js';
import type { Config } from './config/schema.js';
import type { DustgateEvent } from './contract.js';
import type { Logger } from './log.js';
import type { OutputFault } from './outputs.js';
import type { Runtime } from './runtime.js';
import { hint as storageHint, type StorageStatus } from './storage-guard.js';
import type { Eviction, Store } from './store.js';

export interface HealthHost {
  readonly logger: Logger;
  readonly config: Config;
  readonly store: Store;
  readonly rt: Runtime;
  readonly started: boolean;
  readonly stopping: boolean;
  readonly counters: { evictedTelemetry: number; evictedEvents: number };
  now(): number;
  record(events: DustgateEvent[]): void;
  publishState(): void;
  readonly view: { updateLight(): void };
}

export class HealthEvents {
  private lastStatus = new Map<string, string>();

  constructor(private readonly gw: HealthHost) {}

  /** The store failed or writes again: an event (held in memory until it can be stored), the log, P/state. */
  storageChanged(st: StorageStatus): void {
    const gw = this.gw;
    if (st.state === 'failing') gw.record([{ type: 'storage_error', ts: gw.now(), code: st.code, message: st.message, path: gw.config.storage.path, hint: storageHint(st.code!) }]);
    else gw.record([{ type: 'storage_recovered', ts: gw.now(), failingSince: st.since, droppedTelemetry: st.droppedTelemetry, droppedEvents: st.droppedEvents }]);
    gw.publishState();
  }

  /** The system clock stepped: an event; durations are unaffected (they run on the monotonic clock). */
  clockStepped(s: ClockStep): void {
    const gw = this.gw;
    gw.logger.warn({ deltaS: s.deltaMs / 1000, action: s.action }, `system clock stepped ${s.deltaMs > 0 ? 'forward' : 'back'} by ${Math.abs(s.deltaMs / 1000)} s (${s.action === 'held' ? 'timestamps run on until it catches up' : 'followed'})`);
    // recorded on the next turn: the step is noticed inside a now() call
    setImmediate(() => gw.record([{ type: 'clock_step', ts: gw.now(), deltaS: Math.round(s.deltaMs / 100) / 10, action: s.action }]));
  }

  /** The buffer's cap evicted records: counted, logged, an event. */
  overflow(ev: Eviction): void {
    const gw = this.gw;
    gw.counters.evictedTelemetry += ev.telemetry;
    gw.counters.evictedEvents += ev.events;
    gw.logger.warn({ evicted: ev, total: gw.store.evicted }, 'buffer full: oldest records evicted');
    gw.record([{ type: 'buffer_overflow', ts: gw.now(), evictedTelemetry: ev.telemetry, evictedEvents: ev.events, totalEvicted: gw.store.evicted.telemetry + gw.store.evicted.events, maxMB: gw.config.storage.maxMB }]);
  }

  /** A device came or went: an event; one that comes back gets its outputs put where they should be. */
  deviceStatus(device: string, status: string): void {
    const gw = this.gw;
    const before = this.lastStatus.get(device);
    this.lastStatus.set(device, status);
    gw.record([{ type: 'device_status', ts: gw.now(), device, status }]);
    if (status === 'online' && before === 'offline' && gw.started && !gw.stopping) gw.rt.outputs.restore(device);
    gw.view.updateLight();
  }

  outputFault(f: OutputFault): void {
    this.gw.record([{ type: 'output_fault', ts: this.gw.now(), ...f }]);
  }
}
