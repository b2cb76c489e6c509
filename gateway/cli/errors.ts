/** User-facing failures: one line with what, where and what to do; never a stack trace. */
import { isDriverError, type DriverError } from '../../drivers/errors.js';
import { ConfigError } from '../config/errors.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const HINTS: Partial<Record<DriverError['code'], string>> = {
  timeout: 'check wiring (A/B), baud rate (--baud) and unit id (--unit); `dustgate scan` finds devices on a line',
  crc: 'line noise or a baud/parity mismatch: check --baud, termination and shielding',
  garbage: 'another master or a wrong baud rate on the line: check --baud and that nothing else polls the bus',
  short_frame: 'the device cut its reply short: check termination and baud rate',
  exception: 'the device refused the request: check --driver matches the device',
  open_failed: 'check the port path (ls /dev/ttyUSB* /dev/ttyACM*), that no other program holds it, and that the user is in group dialout',
  closed: 'the port or connection went away: check the cable or adapter',
  unknown_driver: 'run `dustgate read --help` for the list of drivers',
  invalid_argument: 'see --help',
};

export function describeError(e: unknown): string {
  if (isDriverError(e)) {
    const where = [e.context.bus && `on ${String(e.context.bus)}`, e.context.unit !== undefined && `unit ${e.context.unit}`].filter(Boolean).join(' ');
    let hint = HINTS[e.code];
    const ex = e.context.exceptionCode;
    if (e.code === 'exception' && (ex === 10 || ex === 11)) hint = 'no device answers with this unit id behind the gateway: check --unit';
    else if (e.code === 'exception' && ex === 1) hint = 'the device does not support this function: check --driver matches the device';
    return `${e.code}: ${e.message}${where && !e.message.includes(where) ? ` (${where})` : ''}${hint ? ` — ${hint}` : ''}`;
  }
  if (e instanceof ConfigError) return `${e.message} — fix the config (\`dustgate config validate FILE\` lists every problem)`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Run a command action; print failures as one line on stderr and exit 1. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      // one line, whatever the message carries
      process.stderr.write(`dustgate: ${describeError(e).replace(/\s*\n\s*/g, ' ')}\n`);
      process.exit(1);
    }
  };
}
