/** What the page and the metrics read of the gateway: a leaf of types, so the metrics module (loaded on the first scrape) need not import the server. */
import type { GatewayDevice } from '../drivers/device.js';
import type { Config } from './config/schema.js';
import type { Locale } from './i18n.js';
import type { OutputActual } from './outputs.js';
import type { StateView } from './state-view.js';
import type { StorageGuard } from './storage-guard.js';

/** What the page and the metrics read of the gateway (it implements this). */
export interface PageHost {
  readonly id: string;
  readonly config: Config;
  readonly version: number;
  readonly devices: Map<string, GatewayDevice>;
  readonly outputs: { readonly actual: Record<string, OutputActual> };
  readonly view: Pick<StateView, 'bufferStats' | 'apiState'>;
  readonly storage: Pick<StorageGuard, 'ok' | 'totals'>;
  readonly store: { readonly evicted: { telemetry: number; events: number } };
  readonly counters: { readings: number; events: number };
  readonly remote?: { readonly counters: { refusedBusy: number } };
  readonly uplink?: { readonly connected: boolean };
  readonly hj212: readonly { readonly name: string; readonly isConnected: boolean }[];
  /** the language of the page when it does not ask for one (gateway.locale) */
  readonly loaded: { readonly locale: Locale };
  apiState(withHistory?: boolean, locale?: Locale): unknown;
}
