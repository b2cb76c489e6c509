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
import type { Registry } from 'prom-client';
import type { PageHost } from './page-host.js';

export type { PageHost } from './page-host.js';
import { statusPage } from './http-page.js';
import { isLocale } from './i18n.js';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class HttpServer {
  private server: http.Server | undefined;
  /** prom-client and the metrics are loaded on the first scrape: a site nobody scrapes never pays for them */
  private registry: Promise<Registry> | undefined;
  port = 0;
  private uplot: { js: Buffer; css: Buffer } | undefined;

  constructor(private readonly gw: PageHost) {}

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
        const registry = await (this.registry ??= import('./http-metrics.js').then((m) => m.createRegistry(this.gw)));
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(await registry.metrics());
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
