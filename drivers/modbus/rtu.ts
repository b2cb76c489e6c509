/** Modbus RTU framing: unit + PDU + CRC-16, frames told apart by length and silence. */
import { contextWith, DriverError } from '../errors.js';
import type { Exchange } from '../line.js';
import { crc16modbus, crcOk } from './crc16.js';
import { decodeResponse, encodeRequestInto, requestLength, responsePduLength, type ModbusRequest, type ModbusResult } from './pdu.js';

export function encodeRtuRequest(unit: number, req: ModbusRequest): Buffer {
  const len = requestLength(req);
  const frame = Buffer.allocUnsafe(1 + len + 2);
  frame[0] = unit;
  encodeRequestInto(req, frame, 1);
  frame.writeUInt16LE(crc16modbus(frame, 0, 1 + len), 1 + len);
  return frame;
}

/** Build the exchange for one RTU request: accepts the first CRC-valid reply from `unit` for `req.fn` found in the received bytes. */
export function rtuExchange(unit: number, req: ModbusRequest, timeoutMs: number, ctx: Record<string, unknown> = {}): Exchange<ModbusResult> {
  const full = 1 + responsePduLength(req) + 2;
  const context = contextWith(ctx, 'unit', unit);
  const classify = (rx: Buffer, silent: boolean): DriverError | undefined => {
    if (rx.length === 0) return silent ? undefined : new DriverError('timeout', `no reply from unit ${unit} in ${timeoutMs} ms`, context);
    const ours = rx[0] === unit && (rx[1] === req.fn || rx[1] === (req.fn | 0x80));
    if (ours) {
      const expected = rx[1] === req.fn ? full : 5;
      if (rx.length >= expected) return new DriverError('crc', `CRC error in the reply from unit ${unit}`, context);
      return new DriverError('short_frame', `short reply from unit ${unit}: ${rx.length} of ${expected} bytes`, context);
    }
    if (silent) return undefined; // noise or someone else's late reply: keep waiting for ours
    return new DriverError('garbage', `unit ${unit} sent no valid reply; ${rx.length} bytes of garbage on the line`, context);
  };
  return {
    tx: encodeRtuRequest(unit, req),
    timeoutMs,
    parse(rx) {
      for (let i = 0; i + 5 <= rx.length; i++) {
        if (rx[i] !== unit) continue;
        const fn = rx[i + 1];
        let len = 0;
        if (fn === req.fn) len = full;
        else if (fn === (req.fn | 0x80)) len = 5;
        else continue;
        if (i + len > rx.length) continue;
        const frame = rx.subarray(i, i + len);
        if (!crcOk(frame)) continue;
        try {
          return { done: decodeResponse(req, frame.subarray(1, len - 2), context) };
        } catch (e) {
          return { fail: e as DriverError };
        }
      }
      return undefined;
    },
    onSilence: (rx) => classify(rx, true),
    onTimeout: (rx) => classify(rx, false)!,
  };
}
