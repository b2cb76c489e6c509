/** The simulator's control API: HTTP on loopback to read and set every value, coil and fault at run time. */
import http from 'node:http';
import type { VirtualDevice } from './virtual-device.js';

/** What the control API needs of a simulator. */
export interface Controllable {
  describe(): unknown;
  device(id: string): VirtualDevice | undefined;
  describeDevice(d: VirtualDevice): unknown;
  setValues(id: string, values: Record<string, number | null>): void;
  setFaults(id: string, names: string[], forS?: number): void;
}

export class ControlApi {
  private server: http.Server | undefined;
  constructor(private readonly sim: Controllable) {}

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  async start(host: string, port: number): Promise<void> {
    const server = http.createServer((req, res) => {
      this.route(req, res).catch((e: unknown) => send(res, 500, { error: String(e) }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'devices') return send(res, 404, { error: 'not found; try GET /devices' });
    if (parts.length === 1 && req.method === 'GET') return send(res, 200, this.sim.describe());
    const id = decodeURIComponent(parts[1] ?? '');
    const dev = this.sim.device(id);
    if (!dev) return send(res, 404, { error: `no device "${id}"` });
    if (parts.length === 2 && req.method === 'GET') return send(res, 200, this.sim.describeDevice(dev));
    if (parts.length === 3 && req.method === 'PUT') {
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        return send(res, 400, { error: 'body must be JSON' });
      }
      try {
        if (parts[2] === 'values') {
          this.sim.setValues(id, body as Record<string, number | null>);
          return send(res, 200, this.sim.describeDevice(dev));
        }
        if (parts[2] === 'faults') {
          const b = body as { faults?: unknown; forS?: unknown };
          const list = Array.isArray(b) ? b : b.faults;
          if (!Array.isArray(list)) return send(res, 400, { error: 'expected {"faults": ["timeout", …], "forS"?: seconds}' });
          this.sim.setFaults(id, list.map(String), typeof b.forS === 'number' ? b.forS : undefined);
          return send(res, 200, this.sim.describeDevice(dev));
        }
      } catch (e) {
        return send(res, 400, { error: (e as Error).message });
      }
    }
    send(res, 405, { error: `${req.method} ${url.pathname} is not supported` });
  }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 1 << 20) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
