/** Every failure on a line is a DriverError with a string-union `code`; tests and counters use `code`, never the message. */
export type DriverErrorCode =
  | 'timeout' // no (complete) reply within timeoutMs
  | 'crc' // a reply arrived but its checksum is wrong
  | 'exception' // the device answered with a Modbus exception
  | 'short_frame' // a reply shorter than its function code requires, followed by silence
  | 'garbage' // bytes that are not a reply to the request (wrong unit, wrong function, noise)
  | 'bad_response' // a well-formed reply whose content does not fit the request
  | 'closed' // the line is not open (adapter unplugged, connection lost)
  | 'open_failed' // the port or host could not be opened
  | 'unknown_driver'
  | 'invalid_argument';

export interface DriverErrorContext {
  bus?: string;
  unit?: number;
  device?: string;
  exceptionCode?: number;
  [key: string]: unknown;
}

export class DriverError extends Error {
  override readonly name = 'DriverError';
  constructor(
    readonly code: DriverErrorCode,
    message: string,
    readonly context: DriverErrorContext = {},
  ) {
    super(message);
  }
}

/** `ctx` naming `key` as `value`: `ctx` itself when it already does (a device's context is made once, not per request). */
export function contextWith(ctx: Record<string, unknown>, key: 'bus' | 'unit', value: unknown): Record<string, unknown> {
  return ctx[key] === value ? ctx : { ...ctx, [key]: value };
}

export function isDriverError(e: unknown): e is DriverError {
  return e instanceof DriverError;
}

export const MODBUS_EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};
