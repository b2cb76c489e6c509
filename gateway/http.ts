/**
 * The local page for installers and the operators' metrics (SPEC §11): `GET /` (status page),
 * `GET /api/state` (JSON), `GET /metrics` (Prometheus text, prom-client). Loopback by default; when
 * bound elsewhere a token is required (`Authorization: Bearer …` or `?token=`), and when a token is
 * set it is always required.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { Counter, Gauge, Registry } from 'prom-client';
import type { GatewayDevice } from '../drivers/device.js';
import type { Config } from './config/schema.js';
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
import { statusPage } from './http-page.js';
import { isLocale, type Locale } from './i18n.js';
import { VERSION } from './version.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Device counters as Prometheus counters, read at scrape time. */
function deviceMetrics(gw: PageHost, registry: Registry): void {
  const counter = (name: string, help: string, pick: (c: GatewayDevice) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['device'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [id, d] of gw.devices) this.inc({ device: id }, pick(d as never));
      },
    });
  counter('dustgate_device_requests_total', 'Requests sent to the device', (d) => d.counters.requests);
  counter('dustgate_device_ok_total', 'Requests the device answered correctly', (d) => d.counters.ok);
  counter('dustgate_device_timeouts_total', 'Requests without an answer in time', (d) => d.counters.timeouts);
  counter('dustgate_device_crc_errors_total', 'Answers with a wrong CRC or checksum', (d) => d.counters.crcErrors);
  counter('dustgate_device_exceptions_total', 'Modbus exception answers', (d) => d.counters.exceptions);
  counter('dustgate_device_garbage_total', 'Replies that were no answer to the request (noise, wrong unit, wrong transaction, wrong function)', (d) => d.counters.garbage);
  counter('dustgate_device_short_frames_total', 'Replies cut short (then silence)', (d) => d.counters.shortFrames);
  new Gauge({
    name: 'dustgate_device_up',
    help: '1 while the device answers, 0 when offline',
    labelNames: ['device'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [id, d] of gw.devices) this.set({ device: id }, d.status === 'online' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dustgate_device_rtt_seconds',
    help: 'Round-trip time of the last good request',
    labelNames: ['device'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [id, d] of gw.devices) if (d.counters.lastRttMs !== null) this.set({ device: id }, d.counters.lastRttMs / 1000);
    },
  });
}

export function createRegistry(gw: PageHost): Registry {
  const registry = new Registry();
  deviceMetrics(gw, registry);
  new Gauge({
    name: 'dustgate_buffer_records',
    help: 'Records waiting in the buffer for the broker',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const s = gw.view.bufferStats();
      this.set({ kind: 'telemetry' }, s.telemetry);
      this.set({ kind: 'event' }, s.events);
      this.set({ kind: 'aggregate' }, s.aggregates ?? 0);
    },
  });
  new Gauge({
    name: 'dustgate_buffer_oldest_age_seconds',
    help: 'Age of the oldest record in the buffer (0 when empty)',
    registers: [registry],
    collect() {
      this.set(gw.view.bufferStats().oldestAgeS ?? 0);
    },
  });
  new Gauge({
    name: 'dustgate_buffer_bytes',
    help: 'Bytes held in the buffer, against storage.maxMB',
    registers: [registry],
    collect() {
      this.set(gw.view.bufferStats().bytes);
    },
  });
  new Counter({
    name: 'dustgate_buffer_evicted_total',
    help: 'Records evicted because the buffer was full',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ kind: 'telemetry' }, gw.store.evicted.telemetry);
      this.inc({ kind: 'event' }, gw.store.evicted.events);
    },
  });
  new Gauge({
    name: 'dustgate_storage_ok',
    help: '1 while the buffer takes writes, 0 while the store fails (disk full, I/O error): polling and rules go on',
    registers: [registry],
    collect() {
      this.set(gw.storage.ok ? 1 : 0);
    },
  });
  new Counter({
    name: 'dustgate_storage_dropped_total',
    help: 'Readings and events not stored because the store failed',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ kind: 'telemetry' }, gw.storage.totals.droppedTelemetry);
      this.inc({ kind: 'event' }, gw.storage.totals.droppedEvents);
    },
  });
  new Counter({
    name: 'dustgate_remote_refused_busy_total',
    help: 'Remote messages refused by the rate limit or a full queue (each was answered)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gw.remote?.counters.refusedBusy ?? 0);
    },
  });
  new Counter({
    name: 'dustgate_readings_total',
    help: 'Readings stored since start',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gw.counters.readings);
    },
  });
  new Counter({
    name: 'dustgate_events_total',
    help: 'Events stored since start',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(gw.counters.events);
    },
  });
  new Gauge({
    name: 'dustgate_link_up',
    help: '1 while the uplink is connected',
    labelNames: ['link'],
    registers: [registry],
    collect() {
      this.reset();
      if (gw.uplink) this.set({ link: 'mqtt' }, gw.uplink.connected ? 1 : 0);
      for (const p of gw.hj212) this.set({ link: p.name }, p.isConnected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dustgate_output_on',
    help: '1 when the output is on as read back from the device',
    labelNames: ['output'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, state] of Object.entries(gw.outputs.actual)) if (state !== 'unknown') this.set({ output: name }, state === 'on' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'dustgate_info',
    help: 'Gateway version and config version',
    labelNames: ['gateway', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ gateway: gw.id, version: VERSION }, gw.version);
    },
  });
  return registry;
}

export class HttpServer {
  private server: http.Server | undefined;
  private readonly registry: Registry;
  port = 0;
  private uplot: { js: Buffer; css: Buffer } | undefined;

  constructor(private readonly gw: PageHost) {
    this.registry = createRegistry(gw);
  }

  private get cfg() {
    return this.gw.config.http;
  }

  private authorised(req: http.IncomingMessage, url: URL): boolean {
    const token = this.cfg.token;
    if (!token) return LOOPBACK.has(this.cfg.bind);
    const given = url.searchParams.get('token') ?? /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    return safeEqual(given, token);
  }

  private asset(name: 'js' | 'css'): Buffer {
    if (!this.uplot) {
      const require = createRequire(import.meta.url);
      this.uplot = { js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js')), css: readFileSync(require.resolve('uplot/dist/uPlot.min.css')) };
    }
    return this.uplot[name];
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      void this.route(req, res).catch((e: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`error: ${String(e)}\n`);
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'EADDRINUSE' ? new Error(`http: ${this.cfg.bind}:${this.cfg.port} is already in use: set http.port to a free port`) : e),
      );
      this.server!.listen(this.cfg.port, this.cfg.bind, () => resolve());
    });
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : this.cfg.port;
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' });
      res.end();
      return;
    }
    if (!this.authorised(req, url)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
      res.end('a token is required: open the page as /?token=… (http.token of the site config)\n');
      return;
    }
    // the page's language: ?lang=zh-CN|en, else gateway.locale
    const lang = url.searchParams.get('lang');
    const locale = isLocale(lang) ? lang : this.gw.loaded.locale;
    switch (url.pathname) {
      case '/':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(statusPage(this.gw.id, locale));
        return;
      case '/uplot.js':
        res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'max-age=86400' });
        res.end(this.asset('js'));
        return;
      case '/uplot.css':
        res.writeHead(200, { 'content-type': 'text/css', 'cache-control': 'max-age=86400' });
        res.end(this.asset('css'));
        return;
      case '/api/state':
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(this.gw.apiState(url.searchParams.has('history'), locale)));
        return;
      case '/metrics':
        res.writeHead(200, { 'content-type': this.registry.contentType });
        res.end(await this.registry.metrics());
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found: try /, /api/state or /metrics\n');
    }
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
