/** A Bus is a Line plus the protocol spoken on it (Modbus RTU, Modbus TCP, or raw sensor frames). */

import { contextWith, DriverError } from './errors.js';
import { Line, wireTimeMs, type Exchange } from './line.js';
import type { ModbusRequest, ModbusResult } from './modbus/pdu.js';
import { rtuExchange } from './modbus/rtu.js';
import { tcpExchange } from './modbus/tcp.js';
import { SerialLink, SocketLink, type BindingInterface, type Parity } from './transports/link.js';

interface BusBase {
  id: string;
  timeoutMs?: number;
}
export type BusConfig =
  | (BusBase & { type: 'rtu'; path: string; baudRate?: number; parity?: Parity; dataBits?: 7 | 8; stopBits?: 1 | 2 })
  | (BusBase & { type: 'tcp'; host: string; port: number })
  | (BusBase & { type: 'rtu-over-tcp'; host: string; port: number; baudRate?: number })
  | (BusBase & { type: 'serial'; path: string; baudRate?: number; parity?: Parity });

export type BusProtocol = 'rtu' | 'tcp' | 'frame';

export interface BusOptions {
  /** Serial binding override (tests: `SerialPortMock.binding` or the simulator's wrapped mock). */
  binding?: BindingInterface;
  reopenInitialMs?: number;
  reopenMaxMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 500;

export class Bus {
  readonly line: Line;
  readonly protocol: BusProtocol;
  readonly timeoutMs: number;
  private tid = 0;

  constructor(readonly config: BusConfig, opts: BusOptions = {}) {
    this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const reopen = { reopenInitialMs: opts.reopenInitialMs, reopenMaxMs: opts.reopenMaxMs };
    switch (config.type) {
      case 'rtu': {
        const baud = config.baudRate ?? 9600;
        this.protocol = 'rtu';
        this.line = new Line({
          id: config.id,
          link: new SerialLink({ path: config.path, baudRate: baud, parity: config.parity, dataBits: config.dataBits, stopBits: config.stopBits, binding: opts.binding }),
          silenceMs: Math.max(50, wireTimeMs(3.5, baud)),
          interFrameMs: wireTimeMs(3.5, baud),
          ...reopen,
        });
        break;
      }
      case 'serial':
        this.protocol = 'frame';
        this.line = new Line({
          id: config.id,
          link: new SerialLink({ path: config.path, baudRate: config.baudRate ?? 9600, parity: config.parity, binding: opts.binding }),
          silenceMs: 50,
          ...reopen,
        });
        break;
      case 'tcp':
        this.protocol = 'tcp';
        this.line = new Line({ id: config.id, link: new SocketLink({ host: config.host, port: config.port }), ...reopen });
        break;
      case 'rtu-over-tcp': {
        // A transparent serial server: RTU frames inside a TCP stream; the far side's baud rate sets the gap.
        const baud = config.baudRate ?? 9600;
        this.protocol = 'rtu';
        this.line = new Line({
          id: config.id,
          link: new SocketLink({ host: config.host, port: config.port }),
          silenceMs: Math.max(50, wireTimeMs(3.5, baud)),
          ...reopen,
        });
        break;
      }
    }
  }

  get id(): string {
    return this.config.id;
  }

  start(): Promise<void> {
    return this.line.start();
  }
  stop(): Promise<void> {
    return this.line.stop();
  }

  /** One Modbus request on this line (queued behind any other). */
  modbus(unit: number, req: ModbusRequest, timeoutMs = this.timeoutMs, ctx: Record<string, unknown> = {}): Promise<ModbusResult> {
    const context = contextWith(ctx, 'bus', this.id);
    let ex: Exchange<ModbusResult>;
    if (this.protocol === 'rtu') ex = rtuExchange(unit, req, timeoutMs, context);
    else if (this.protocol === 'tcp') ex = tcpExchange((this.tid = (this.tid + 1) & 0xffff), unit, req, timeoutMs, context);
    else return Promise.reject(new DriverError('invalid_argument', `bus ${this.id} carries sensor frames, not Modbus`, context));
    return this.line.transact(ex);
  }

  /** A raw exchange (sensor frame protocols). */
  exchange<T>(ex: Exchange<T>): Promise<T> {
    return this.line.transact(ex);
  }
}
