/**
 * A ByteLink moves bytes and nothing else: a serial port (native or mock binding) or a TCP socket.
 * Protocols (Modbus RTU/TCP framing, PMS5003/SDS011 frames) run on top of it through a Line.
 */
import net from 'node:net';
import { existsSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { SerialPortStream } from '@serialport/stream';
/** Any serialport binding: the native one, the mock, or the simulator-wrapped mock. */
export type BindingInterface = ConstructorParameters<typeof SerialPortStream>[0]['binding'];
import { DriverError } from '../errors.js';

export interface ByteLink {
  readonly isOpen: boolean;
  /** Human-readable address: a device path or host:port. */
  readonly address: string;
  open(): Promise<void>;
  close(): Promise<void>;
  /**
   * Send bytes. A write that cannot be made (the link is not open, the port refused it) is told to
   * `onError`, at once or later; no promise per write (every request writes: issue 17).
   */
  write(data: Buffer, onError?: (e: DriverError) => void): void;
  /** False when the device behind an open link is known to be gone (its tty node vanished). */
  stillThere?(): boolean;
  on(event: 'data', cb: (d: Buffer) => void): this;
  on(event: 'close', cb: (err?: Error) => void): this;
}

export type Parity = 'none' | 'even' | 'odd';

export interface SerialLinkOptions {
  path: string;
  baudRate: number;
  parity?: Parity;
  dataBits?: 5 | 6 | 7 | 8;
  stopBits?: 1 | 2;
  /** Defaults to the native binding; tests pass `SerialPortMock.binding` (or a simulator-wrapped one). */
  binding?: BindingInterface;
}

export class SerialLink extends EventEmitter implements ByteLink {
  private port: SerialPortStream | undefined;
  constructor(readonly options: SerialLinkOptions) {
    super();
  }
  get address(): string {
    return this.options.path;
  }
  get isOpen(): boolean {
    return this.port?.isOpen === true;
  }

  async open(): Promise<void> {
    const o = this.options;
    // loaded on first use: a Modbus TCP site (or `dustgate read --host`) never loads the serial stack
    const { SerialPortStream } = await import('@serialport/stream');
    const port = new SerialPortStream({
      binding: o.binding ?? (await import('serialport')).SerialPort.binding,
      path: o.path,
      baudRate: o.baudRate,
      parity: o.parity ?? 'none',
      dataBits: o.dataBits ?? 8,
      stopBits: o.stopBits ?? 1,
      autoOpen: false,
    });
    await new Promise<void>((resolve, reject) =>
      port.open((err) =>
        err ? reject(new DriverError('open_failed', `cannot open ${o.path}: ${err.message}`, { path: o.path })) : resolve(),
      ),
    );
    this.port = port;
    port.on('data', (d: Buffer) => this.emit('data', d));
    // serialport emits 'error' before 'close' on a pulled adapter; the close carries the reason to the Line.
    let lastError: Error | undefined;
    port.on('error', (e: Error) => (lastError = e));
    port.on('close', (e?: Error) => {
      if (this.port === port) this.port = undefined;
      this.emit('close', e ?? lastError);
    });
  }

  /** A pulled USB adapter removes its /dev node; some drivers never report a hang-up on the open fd. */
  stillThere(): boolean {
    return this.options.binding !== undefined || existsSync(this.options.path);
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  write(data: Buffer, onError?: (e: DriverError) => void): void {
    const port = this.port;
    if (!port?.isOpen) return onError?.(new DriverError('closed', `${this.options.path} is not open`));
    port.write(data, (err) => {
      if (err) onError?.(new DriverError('closed', `write to ${this.options.path} failed: ${err.message}`));
    });
  }
}

export interface SocketLinkOptions {
  host: string;
  port: number;
  connectTimeoutMs?: number;
}

export class SocketLink extends EventEmitter implements ByteLink {
  private socket: net.Socket | undefined;
  constructor(readonly options: SocketLinkOptions) {
    super();
  }
  get address(): string {
    return `${this.options.host}:${this.options.port}`;
  }
  get isOpen(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  async open(): Promise<void> {
    const { host, port, connectTimeoutMs = 3000 } = this.options;
    const socket = net.createConnection({ host, port });
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new DriverError('open_failed', `cannot connect to ${host}:${port}: no answer in ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new DriverError('open_failed', `cannot connect to ${host}:${port}: ${e.message}`));
      });
    });
    this.socket = socket;
    let lastError: Error | undefined;
    socket.on('data', (d) => this.emit('data', d));
    socket.on('error', (e) => (lastError = e));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      this.emit('close', lastError ?? new Error('connection closed by peer'));
    });
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => s.destroy(), 200).unref();
    });
  }

  write(data: Buffer, onError?: (e: DriverError) => void): void {
    const s = this.socket;
    if (!s || s.destroyed) return onError?.(new DriverError('closed', `${this.address} is not connected`));
    // no callback per write (an extra tick on every request): a write that fails errors and closes the
    // socket, and the line, told by 'close', fails the request in flight as `closed`
    s.write(data);
  }
}
