/** Modbus TCP server for the virtual devices (and the transparent-serial-server flavour: RTU inside TCP). */
import net from 'node:net';
import { decodeRequest, encodeException } from '../drivers/modbus/pdu.js';
import { encodeMbap, parseMbap } from '../drivers/modbus/tcp.js';
import { applyFaults, SerialSlave, type SimClock } from './serial-slave.js';
import type { VirtualDevice } from './virtual-device.js';

export interface TcpServerOptions {
  host: string;
  port: number;
  devices: () => VirtualDevice[];
  clock: SimClock;
  /** 'tcp': Modbus TCP (MBAP). 'rtu-over-tcp': RTU frames, as a transparent serial server forwards them. */
  framing?: 'tcp' | 'rtu-over-tcp';
  baudRate?: number;
}

export class ModbusTcpServer {
  private server: net.Server | undefined;
  private sockets = new Set<net.Socket>();
  private salt = 0;
  readonly stats = { connections: 0, requests: 0 };

  constructor(private readonly o: TcpServerOptions) {}

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.o.port;
  }

  async start(): Promise<void> {
    const server = net.createServer((s) => this.onConnection(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Drop every client connection (the `disconnect` fault). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private onConnection(socket: net.Socket): void {
    this.stats.connections++;
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    if (this.o.framing === 'rtu-over-tcp') {
      const slave = new SerialSlave({
        devices: this.o.devices,
        clock: this.o.clock,
        baudRate: this.o.baudRate ?? 9600,
        send: (d) => socket.writable && socket.write(d),
      });
      socket.on('data', (d) => slave.receive(d));
      socket.on('close', () => slave.reset());
      return;
    }
    let rx: Buffer = Buffer.alloc(0);
    socket.on('data', (d) => {
      rx = rx.length ? Buffer.concat([rx, d]) : d;
      for (;;) {
        const f = parseMbap(rx);
        if (f === 'need') break;
        if (f === 'invalid') {
          socket.destroy();
          return;
        }
        rx = rx.subarray(f.length);
        this.handle(socket, f.transactionId, f.unit, f.pdu);
      }
    });
  }

  private handle(socket: net.Socket, tid: number, unit: number, pdu: Buffer): void {
    this.stats.requests++;
    const devices = this.o.devices();
    // A Modbus TCP server with one device often ignores the unit id; with several, route by it.
    const dev = devices.find((d) => d.unit === unit && d.definition.kind === 'modbus');
    const fn = pdu[0] ?? 0;
    if (!dev) {
      if (socket.writable) socket.write(encodeMbap(tid, unit, encodeException(fn, 0x0b))); // gateway target device failed to respond
      return;
    }
    dev.stats.requests++;
    const { t, wallMs } = this.o.clock.now();
    const faults = dev.activeFaults(t);
    if (faults.some((f) => f.kind === 'disconnect')) {
      socket.destroy();
      return;
    }
    const decoded = decodeRequest(pdu);
    const res = decoded.ok ? dev.handleModbus(decoded.req, t, wallMs) : encodeException(decoded.fn, decoded.exception);
    const adu = encodeMbap(tid, unit, res);
    const exceptionAdu = (code: number) => encodeMbap(tid, unit, encodeException(fn, code));
    // No CRC in Modbus TCP: a `crc-error` fault corrupts the header instead, which a master must reject.
    const { out, extraMs } = applyFaults(faults.filter((f) => f.kind !== 'crc-error'), adu, exceptionAdu, ++this.salt);
    if (faults.length) dev.stats.faultsInjected++;
    if (!out) return;
    let wire = out;
    if (faults.some((f) => f.kind === 'crc-error')) {
      wire = Buffer.from(out);
      wire.writeUInt16BE(0x4352, 2);
    }
    dev.stats.replies++;
    const write = () => socket.writable && socket.write(wire);
    if (extraMs > 0) setTimeout(write, extraMs);
    else write();
  }
}
