/** Modbus TCP framing: MBAP header (transaction id, protocol 0, length, unit) + PDU. */
import { contextWith, DriverError } from '../errors.js';
import type { Exchange } from '../line.js';
import { decodeResponse, encodeRequestInto, requestLength, type ModbusRequest, type ModbusResult } from './pdu.js';

/** The MBAP frame of a request: for reads (functions 1–4, every poll) written straight into one buffer. */
function encodeTcpRequest(transactionId: number, unit: number, req: ModbusRequest): Buffer {
  const len = requestLength(req);
  return encodeRequestInto(req, mbapHeader(Buffer.allocUnsafe(7 + len), transactionId, unit, len), 7);
}

/** The MBAP header of a frame carrying `pduLength` bytes of PDU, written at its start. */
function mbapHeader(frame: Buffer, transactionId: number, unit: number, pduLength: number): Buffer {
  frame.writeUInt16BE(transactionId & 0xffff, 0);
  frame.writeUInt16BE(0, 2);
  frame.writeUInt16BE(pduLength + 1, 4);
  frame[6] = unit;
  return frame;
}

export function encodeMbap(transactionId: number, unit: number, pdu: Buffer): Buffer {
  const frame = mbapHeader(Buffer.allocUnsafe(7 + pdu.length), transactionId, unit, pdu.length);
  pdu.copy(frame, 7);
  return frame;
}

export type MbapFrame = { transactionId: number; unit: number; pdu: Buffer; length: number };

/** Parse one MBAP frame at the start of `buf`: the frame, 'need' (more bytes), or 'invalid'. */
export function parseMbap(buf: Buffer): MbapFrame | 'need' | 'invalid' {
  if (buf.length < 7) return 'need';
  const protocol = buf.readUInt16BE(2);
  const len = buf.readUInt16BE(4);
  if (protocol !== 0 || len < 2 || len > 254) return 'invalid';
  if (buf.length < 6 + len) return 'need';
  return { transactionId: buf.readUInt16BE(0), unit: buf[6]!, pdu: buf.subarray(7, 6 + len), length: 6 + len };
}

export function tcpExchange(
  transactionId: number,
  unit: number,
  req: ModbusRequest,
  timeoutMs: number,
  ctx: Record<string, unknown> = {},
): Exchange<ModbusResult> {
  const context = contextWith(ctx, 'unit', unit);
  return {
    tx: encodeTcpRequest(transactionId, unit, req),
    timeoutMs,
    parse(rx) {
      let off = 0;
      for (;;) {
        const f = parseMbap(off ? rx.subarray(off) : rx);
        if (f === 'need') return undefined;
        if (f === 'invalid') return { fail: new DriverError('garbage', `invalid Modbus TCP header from ${unit}`, context) };
        off += f.length;
        if (f.transactionId !== (transactionId & 0xffff)) continue; // a late reply to an earlier request (if nothing better comes: garbage)
        // a reply must come from the unit asked (0 and 255 address "the device itself" on plain Modbus TCP)
        if (f.unit !== unit && unit !== 0 && unit !== 255)
          return { fail: new DriverError('garbage', `reply from unit ${f.unit} to a request for unit ${unit}`, { ...context, replyUnit: f.unit }) };
        try {
          return { done: decodeResponse(req, f.pdu, context) };
        } catch (e) {
          return { fail: e as DriverError };
        }
      }
    },
    onTimeout: (rx) => {
      if (!rx.length) return new DriverError('timeout', `no reply from unit ${unit} in ${timeoutMs} ms`, context);
      // whole frames that were not the answer (another transaction id) are garbage; a frame cut short is a short frame
      const tids: number[] = [];
      let off = 0;
      for (;;) {
        const f = parseMbap(rx.subarray(off));
        if (f === 'invalid') return new DriverError('garbage', `invalid Modbus TCP header from ${unit}`, context);
        if (f === 'need') break;
        tids.push(f.transactionId);
        off += f.length;
      }
      if (off < rx.length) return new DriverError('short_frame', `incomplete reply from unit ${unit} (${rx.length - off} bytes)`, context);
      return new DriverError('garbage', `reply with transaction id ${tids.join(', ')} to request ${transactionId & 0xffff} from unit ${unit}`, { ...context, replyTransactionIds: tids });
    },
  };
}
