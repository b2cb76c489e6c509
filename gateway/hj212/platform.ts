/**
 * A stand-in HJ 212 platform (`dustgate hj212-platform`, and the tests' far end): accepts
 * connections, checks the length and CRC of every packet, acks uploads that ask for it (9014),
 * logs what it received, and can ask a connected gateway for back-fill.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Hj212Error, cpValue, decodePacket, encodePacket, field, hjTime, splitStream, type CpGroup, type Hj212Packet } from './codec.js';
import { CN, reply } from './protocol.js';

export interface Received {
  at: number;
  cn: string;
  qn: string;
  mn: string;
  flag: number;
  dataTime?: string;
  packet: Hj212Packet;
  text: string;
}

export interface PlatformOptions {
  host?: string;
  port: number;
  /** Answer uploads that ask for it with 9014 (default true). */
  ack?: boolean;
  /** the platform's clock (default: this machine's) */
  now?: () => number;
  timeZone?: string;
}

export class Hj212Platform extends EventEmitter {
  readonly received: Received[] = [];
  private readonly now: () => number;
  readonly errors: { at: number; code: string; message: string }[] = [];
  private server: net.Server | undefined;
  private sockets = new Set<net.Socket>();
  ack: boolean;
  port = 0;

  constructor(private readonly o: PlatformOptions) {
    super();
    this.ack = o.ack ?? true;
    this.now = o.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.server = net.createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.o.port, this.o.host ?? '127.0.0.1', () => resolve());
    });
    const a = this.server.address();
    this.port = typeof a === 'object' && a ? a.port : this.o.port;
  }

  private accept(s: net.Socket): void {
    this.sockets.add(s);
    this.emit('connection');
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const { packets, rest } = splitStream(buf);
      buf = rest;
      for (const p of packets) this.onPacket(s, p);
    });
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
  }

  private onPacket(s: net.Socket, raw: Buffer): void {
    let p: Hj212Packet;
    try {
      p = decodePacket(raw);
    } catch (e) {
      const err = e instanceof Hj212Error ? { code: e.code, message: e.message } : { code: 'error', message: String(e) };
      this.errors.push({ at: Date.now(), ...err });
      this.emit('bad-packet', err);
      return;
    }
    const r: Received = {
      at: Date.now(),
      cn: field(p, 'CN') ?? '',
      qn: field(p, 'QN') ?? '',
      mn: field(p, 'MN') ?? '',
      flag: Number(field(p, 'Flag') ?? 0),
      dataTime: cpValue(p, 'DataTime'),
      packet: p,
      text: raw.toString('utf8'),
    };
    this.received.push(r);
    this.emit('packet', r);
    if (this.ack && r.flag & 1 && ![CN.qnRtn, CN.exeRtn, CN.dataAck].includes(r.cn as never))
      s.write(reply({ qn: r.qn, st: '91', cn: CN.dataAck, pw: field(p, 'PW') ?? '', mn: r.mn }));
    // a site asks for the time (1013): set it (1012) from this platform's clock
    if (r.cn === CN.timeCalibration) this.request({ cn: CN.setTime, mn: r.mn, pw: field(p, 'PW') ?? undefined, cp: [[['SystemTime', hjTime(this.now(), this.o.timeZone ?? 'Asia/Shanghai')]]] });
  }

  /** Send a request to every connected gateway (e.g. CN 2061 with BeginTime/EndTime). */
  request(o: { cn: string; mn: string; pw?: string; st?: string; cp?: CpGroup[]; qn?: string }): string {
    const qn = o.qn ?? hjTime(Date.now(), this.o.timeZone ?? 'Asia/Shanghai', true);
    const text = encodePacket({
      fields: [
        ['QN', qn],
        ['ST', o.st ?? '39'],
        ['CN', o.cn],
        ['PW', o.pw ?? '123456'],
        ['MN', o.mn],
        ['Flag', '5'],
      ],
      cp: o.cp ?? [],
    });
    for (const s of this.sockets) s.write(text);
    return qn;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Drop every connection (the platform going away) without stopping the listener. */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
