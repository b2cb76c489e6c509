/**
 * Pure Modbus PDU codec (function code + data, no unit id, no CRC/MBAP) for both ends of the line:
 * the master side (encodeRequest / decodeResponse) and the simulator's server side
 * (requestPduLength / decodeRequest / encodeResponse / encodeException).
 */
import { DriverError, MODBUS_EXCEPTIONS } from '../errors.js';

export type ModbusRequest =
  | { fn: 1 | 2; address: number; count: number }
  | { fn: 3 | 4; address: number; count: number }
  | { fn: 5; address: number; value: boolean }
  | { fn: 6; address: number; value: number }
  | { fn: 15; address: number; values: boolean[] }
  | { fn: 16; address: number; values: number[] };

export type ModbusResult =
  | { fn: 1 | 2; bits: boolean[] }
  | { fn: 3 | 4; registers: number[] }
  | { fn: 5; address: number; value: boolean }
  | { fn: 6; address: number; value: number }
  | { fn: 15 | 16; address: number; count: number };

export const SUPPORTED_FUNCTIONS = [1, 2, 3, 4, 5, 6, 15, 16] as const;

/** Length in bytes of the request PDU for `req`. */
export function requestLength(req: ModbusRequest): number {
  return req.fn === 15 ? 6 + Math.ceil(req.values.length / 8) : req.fn === 16 ? 6 + req.values.length * 2 : 5;
}

/**
 * Write the request PDU for `req` into `b` at `off` (`requestLength(req)` bytes). The framings write
 * theirs around it (TCP's MBAP header, RTU's unit and CRC): one buffer per request.
 */
export function encodeRequestInto(req: ModbusRequest, b: Buffer, off: number): Buffer {
  b[off] = req.fn;
  b.writeUInt16BE(req.address, off + 1);
  switch (req.fn) {
    case 1:
    case 2:
    case 3:
    case 4:
      b.writeUInt16BE(req.count, off + 3);
      break;
    case 5:
      b.writeUInt16BE(req.value ? 0xff00 : 0x0000, off + 3);
      break;
    case 6:
      b.writeUInt16BE(req.value & 0xffff, off + 3);
      break;
    case 15: {
      const bytes = Math.ceil(req.values.length / 8);
      b.writeUInt16BE(req.values.length, off + 3);
      b[off + 5] = bytes;
      b.fill(0, off + 6, off + 6 + bytes);
      req.values.forEach((v, i) => {
        if (v) b[off + 6 + (i >> 3)]! |= 1 << (i & 7);
      });
      break;
    }
    case 16:
      b.writeUInt16BE(req.values.length, off + 3);
      b[off + 5] = req.values.length * 2;
      req.values.forEach((v, i) => b.writeUInt16BE(v & 0xffff, off + 6 + i * 2));
      break;
  }
  return b;
}

export function encodeRequest(req: ModbusRequest): Buffer {
  return encodeRequestInto(req, Buffer.allocUnsafe(requestLength(req)), 0);
}

/** Length in bytes of the normal (non-exception) response PDU to `req`. */
export function responsePduLength(req: ModbusRequest): number {
  switch (req.fn) {
    case 1:
    case 2:
      return 2 + Math.ceil(req.count / 8);
    case 3:
    case 4:
      return 2 + req.count * 2;
    default:
      return 5;
  }
}

/** Decode a response PDU to `req`. Throws DriverError `exception` or `bad_response`. */
export function decodeResponse(req: ModbusRequest, pdu: Uint8Array, context: Record<string, unknown> = {}): ModbusResult {
  const fn = pdu[0];
  if (fn === (req.fn | 0x80)) {
    const code = pdu[1] ?? 0;
    throw new DriverError('exception', `Modbus exception ${code} (${MODBUS_EXCEPTIONS[code] ?? 'unknown'})`, {
      ...context,
      exceptionCode: code,
    });
  }
  if (fn !== req.fn) throw new DriverError('bad_response', `reply has function ${fn}, expected ${req.fn}`, context);
  const buf = Buffer.isBuffer(pdu) ? pdu : Buffer.from(pdu.buffer, pdu.byteOffset, pdu.byteLength);
  switch (req.fn) {
    case 1:
    case 2: {
      const n = buf[1]!;
      if (n !== Math.ceil(req.count / 8) || buf.length < 2 + n)
        throw new DriverError('bad_response', `reply byte count ${n} does not fit ${req.count} bits`, context);
      const bits: boolean[] = [];
      for (let i = 0; i < req.count; i++) bits.push(((buf[2 + (i >> 3)]! >> (i & 7)) & 1) === 1);
      return { fn: req.fn, bits };
    }
    case 3:
    case 4: {
      const n = buf[1]!;
      if (n !== req.count * 2 || buf.length < 2 + n)
        throw new DriverError('bad_response', `reply byte count ${n} does not fit ${req.count} registers`, context);
      const registers: number[] = [];
      for (let i = 0; i < req.count; i++) registers.push(buf.readUInt16BE(2 + i * 2));
      return { fn: req.fn, registers };
    }
    case 5: {
      const address = buf.readUInt16BE(1);
      const raw = buf.readUInt16BE(3);
      if (address !== req.address || (raw !== 0xff00 && raw !== 0))
        throw new DriverError('bad_response', 'write-coil echo does not match the request', context);
      return { fn: 5, address, value: raw === 0xff00 };
    }
    case 6: {
      const address = buf.readUInt16BE(1);
      const value = buf.readUInt16BE(3);
      if (address !== req.address) throw new DriverError('bad_response', 'write-register echo does not match', context);
      return { fn: 6, address, value };
    }
    case 15:
    case 16: {
      const address = buf.readUInt16BE(1);
      const count = buf.readUInt16BE(3);
      if (address !== req.address || count !== req.values.length)
        throw new DriverError('bad_response', 'write-multiple echo does not match', context);
      return { fn: req.fn, address, count };
    }
  }
}

// ---------------------------------------------------------------- server side

/**
 * How many bytes the request PDU starting at `pdu` needs, or undefined when more bytes are
 * needed to tell. Unknown function codes return 1 (the function byte alone; answered with exception 1).
 */
export function requestPduLength(pdu: Uint8Array): number | undefined {
  if (pdu.length < 1) return undefined;
  const fn = pdu[0]!;
  if (fn >= 1 && fn <= 6) return 5;
  if (fn === 15 || fn === 16) return pdu.length < 6 ? undefined : 6 + pdu[5]!;
  return 1;
}

export type DecodedRequest = { ok: true; req: ModbusRequest } | { ok: false; fn: number; exception: number };

export function decodeRequest(pdu: Uint8Array): DecodedRequest {
  const buf = Buffer.isBuffer(pdu) ? pdu : Buffer.from(pdu.buffer, pdu.byteOffset, pdu.byteLength);
  const fn = buf[0]!;
  const address = buf.length >= 3 ? buf.readUInt16BE(1) : 0;
  switch (fn) {
    case 1:
    case 2: {
      const count = buf.readUInt16BE(3);
      if (count < 1 || count > 2000) return { ok: false, fn, exception: 3 };
      return { ok: true, req: { fn, address, count } };
    }
    case 3:
    case 4: {
      const count = buf.readUInt16BE(3);
      if (count < 1 || count > 125) return { ok: false, fn, exception: 3 };
      return { ok: true, req: { fn, address, count } };
    }
    case 5: {
      const raw = buf.readUInt16BE(3);
      if (raw !== 0xff00 && raw !== 0) return { ok: false, fn, exception: 3 };
      return { ok: true, req: { fn: 5, address, value: raw === 0xff00 } };
    }
    case 6:
      return { ok: true, req: { fn: 6, address, value: buf.readUInt16BE(3) } };
    case 15: {
      const count = buf.readUInt16BE(3);
      const values: boolean[] = [];
      for (let i = 0; i < count; i++) values.push(((buf[6 + (i >> 3)]! >> (i & 7)) & 1) === 1);
      return { ok: true, req: { fn: 15, address, values } };
    }
    case 16: {
      const count = buf.readUInt16BE(3);
      const values: number[] = [];
      for (let i = 0; i < count; i++) values.push(buf.readUInt16BE(6 + i * 2));
      return { ok: true, req: { fn: 16, address, values } };
    }
    default:
      return { ok: false, fn, exception: 1 };
  }
}

export function encodeResponse(res: ModbusResult): Buffer {
  switch (res.fn) {
    case 1:
    case 2: {
      const n = Math.ceil(res.bits.length / 8);
      const b = Buffer.alloc(2 + n);
      b[0] = res.fn;
      b[1] = n;
      res.bits.forEach((v, i) => {
        if (v) b[2 + (i >> 3)]! |= 1 << (i & 7);
      });
      return b;
    }
    case 3:
    case 4: {
      const b = Buffer.alloc(2 + res.registers.length * 2);
      b[0] = res.fn;
      b[1] = res.registers.length * 2;
      res.registers.forEach((v, i) => b.writeUInt16BE(v & 0xffff, 2 + i * 2));
      return b;
    }
    case 5:
      return Buffer.from([5, res.address >> 8, res.address & 0xff, res.value ? 0xff : 0, 0]);
    case 6:
      return Buffer.from([6, res.address >> 8, res.address & 0xff, (res.value >> 8) & 0xff, res.value & 0xff]);
    case 15:
    case 16:
      return Buffer.from([res.fn, res.address >> 8, res.address & 0xff, res.count >> 8, res.count & 0xff]);
  }
}

export function encodeException(fn: number, code: number): Buffer {
  return Buffer.from([fn | 0x80, code]);
}
