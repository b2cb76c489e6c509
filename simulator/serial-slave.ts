/**
 * The device end of a serial line (mock binding, pty, or a transparent serial server over TCP):
 * frames incoming requests, routes them to the virtual devices on the line, applies faults, and
 * sends each reply after the real wire time at the line's baud rate (11 bits per character,
 * 3.5 characters of silence between frames), so bus timing is realistic.
 */
import { crcOk, withCrc } from '../drivers/modbus/crc16.js';
import { decodeRequest, encodeException, requestPduLength } from '../drivers/modbus/pdu.js';
import { sdsSettingReply } from '../drivers/devices/sds011.js';
import { wireTimeMs } from '../drivers/line.js';
import { corruptTail, noiseBytes, type Fault } from './faults.js';
import type { VirtualDevice } from './virtual-device.js';

export interface SimClock {
  /** Scenario seconds and wall-clock ms. */
  now(): { t: number; wallMs: number };
}

export interface SerialSlaveOptions {
  devices: () => VirtualDevice[];
  clock: SimClock;
  send: (data: Buffer) => void;
  baudRate: number;
  /** Delay replies by the wire time (default true). */
  wireTime?: boolean;
  /** Called when a device on this line enters or leaves a `disconnect` fault. */
  onDisconnectFault?: () => void;
}

export interface SlaveStats {
  requests: number;
  crcErrorsIn: number;
  unanswered: number;
  bytesIn: number;
  bytesOut: number;
}

/** Apply the active faults to a reply; returns the bytes to send (or null for silence) and extra delay. */
export function applyFaults(faults: Fault[], reply: Buffer, exceptionFrame: (code: number) => Buffer, salt: number): { out: Buffer | null; extraMs: number } {
  let out: Buffer | null = reply;
  let extraMs = 0;
  for (const f of faults) {
    switch (f.kind) {
      case 'timeout':
      case 'disconnect':
        out = null;
        break;
      case 'crc-error':
        if (out) out = corruptTail(out);
        break;
      case 'garbage':
        if (out) out = noiseBytes(out.length, salt);
        break;
      case 'short-frame':
        if (out) out = out.subarray(0, Math.max(3, Math.floor(out.length / 2)));
        break;
      case 'exception':
        if (out) out = exceptionFrame(f.code);
        break;
      case 'slow':
        extraMs += f.ms;
        break;
    }
  }
  return { out, extraMs };
}

export class SerialSlave {
  private rx: Buffer = Buffer.alloc(0);
  private lastRxAt = 0;
  private lineFreeAt = 0;
  private salt = 0;
  private timers = new Set<NodeJS.Timeout>();
  readonly stats: SlaveStats = { requests: 0, crcErrorsIn: 0, unanswered: 0, bytesIn: 0, bytesOut: 0 };

  constructor(private readonly o: SerialSlaveOptions) {}

  private char(n: number): number {
    return this.o.wireTime === false ? 0 : wireTimeMs(n, this.o.baudRate);
  }

  receive(data: Buffer): void {
    const now = performance.now();
    this.stats.bytesIn += data.length;
    // A partial frame followed by a long silence is line noise: a new frame starts now.
    if (this.rx.length && now - this.lastRxAt > Math.max(100, this.char(3.5) * 4)) this.rx = Buffer.alloc(0);
    this.lastRxAt = now;
    this.rx = this.rx.length ? Buffer.concat([this.rx, data]) : data;
    const devices = this.o.devices();
    const frameDev = devices.find((d) => d.definition.kind === 'frame');
    for (;;) {
      if (frameDev) {
        if (!this.takeFrameCommand(frameDev)) break;
      } else if (!this.takeModbusRequest(devices)) break;
    }
  }

  private takeFrameCommand(dev: VirtualDevice): boolean {
    const def = dev.definition;
    if (def.kind !== 'frame' || this.rx.length === 0) return false;
    const len = def.commandLength(this.rx);
    if (len === undefined || this.rx.length < len) return false;
    const cmd = this.rx.subarray(0, len);
    this.rx = this.rx.subarray(len);
    if (len === 1) return true; // stray byte
    this.stats.requests++;
    dev.stats.requests++;
    const { t, wallMs } = this.o.clock.now();
    let reply: Buffer | null = null;
    if (def.isPollCommand(cmd)) reply = def.encode(dev.values(t, wallMs));
    else if (def.name === 'sds011') reply = sdsSettingReply(Buffer.from(cmd));
    if (!reply) {
      this.schedule(null, len, 0);
      return true;
    }
    const faults = dev.activeFaults(t);
    const { out, extraMs } = applyFaults(faults, reply, () => reply!, ++this.salt);
    if (faults.length) dev.stats.faultsInjected++;
    if (out) dev.stats.replies++;
    this.schedule(out, len, extraMs);
    return true;
  }

  private takeModbusRequest(devices: VirtualDevice[]): boolean {
    if (this.rx.length < 2) return false;
    const pduLen = requestPduLength(this.rx.subarray(1));
    if (pduLen === undefined) return false;
    const total = 1 + pduLen + 2;
    if (this.rx.length < total) return false;
    const frame = this.rx.subarray(0, total);
    if (!crcOk(frame)) {
      this.stats.crcErrorsIn++;
      this.rx = this.rx.subarray(1); // resync on the next byte
      return true;
    }
    this.rx = this.rx.subarray(total);
    this.stats.requests++;
    const unit = frame[0]!;
    const dev = devices.find((d) => d.unit === unit && d.definition.kind === 'modbus');
    if (!dev) {
      this.stats.unanswered++;
      this.schedule(null, total, 0);
      return true;
    }
    dev.stats.requests++;
    const { t, wallMs } = this.o.clock.now();
    const faults = dev.activeFaults(t);
    if (faults.some((f) => f.kind === 'timeout' || f.kind === 'disconnect')) {
      dev.stats.faultsInjected++;
      this.schedule(null, total, 0);
      return true;
    }
    const decoded = decodeRequest(frame.subarray(1, total - 2));
    const pdu = decoded.ok ? dev.handleModbus(decoded.req, t, wallMs) : encodeException(decoded.fn, decoded.exception);
    const wrap = (p: Buffer) => withCrc(Buffer.concat([Buffer.from([unit]), p]));
    const fn = frame[1]!;
    const { out, extraMs } = applyFaults(faults, wrap(pdu), (code) => wrap(encodeException(fn, code)), ++this.salt);
    if (faults.length) dev.stats.faultsInjected++;
    if (out) dev.stats.replies++;
    this.schedule(out, total, extraMs);
    return true;
  }

  /** Send `reply` when the wire would have carried the request and the reply; keep the line busy meanwhile. */
  private schedule(reply: Buffer | null, requestBytes: number, extraMs: number): void {
    const now = performance.now();
    const start = Math.max(now, this.lineFreeAt);
    const requestEnd = start + this.char(requestBytes);
    if (!reply) {
      this.lineFreeAt = requestEnd + this.char(3.5);
      return;
    }
    const replyEnd = requestEnd + this.char(3.5) + extraMs + this.char(reply.length);
    // A slow device thinks longer before it answers; the master may give up and talk to another
    // device meanwhile, so the extra delay does not hold the line (its late reply is line noise then).
    this.lineFreeAt = replyEnd - extraMs + this.char(3.5);
    const delay = replyEnd - now;
    const send = () => {
      this.stats.bytesOut += reply.length;
      this.o.send(reply);
    };
    if (delay < 0.5) {
      send();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      send();
    }, delay);
    this.timers.add(timer);
  }

  /** Drop pending replies (the line went away). */
  reset(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.rx = Buffer.alloc(0);
    this.lineFreeAt = 0;
  }
}
