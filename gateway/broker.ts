/** An embedded MQTT broker (aedes) on loopback, for the demo and for tests. */
import { Aedes } from 'aedes';
import net from 'node:net';

export interface EmbeddedBroker {
  broker: Aedes;
  host: string;
  port: number;
  stop(): Promise<void>;
}

export async function startEmbeddedBroker(host = '127.0.0.1', port = 1883): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      broker.close();
      reject(e.code === 'EADDRINUSE' ? new Error(`port ${host}:${port} is already in use: choose another with --mqtt-port`) : e);
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return {
    broker,
    host,
    port: typeof addr === 'object' && addr ? addr.port : port,
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}
