/** User-facing failures: one line with what, where and what to do; never a stack trace. */
import { isDriverError, type DriverError } from '../../drivers/errors.js';
import { ConfigError } from '../config/errors.js';
import { tr } from './lang.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The fix for each driver error, in the CLI's language (cli.hint.* in the catalogs). */
const HINTS: ReadonlySet<DriverError['code']> = new Set(['timeout', 'crc', 'garbage', 'short_frame', 'exception', 'open_failed', 'closed', 'unknown_driver', 'invalid_argument']);

export function describeError(e: unknown): string {
  if (isDriverError(e)) {
    const where = [e.context.bus && `on ${String(e.context.bus)}`, e.context.unit !== undefined && `unit ${e.context.unit}`].filter(Boolean).join(' ');
    let hint = HINTS.has(e.code) ? tr(`cli.hint.${e.code}`) : undefined;
    const ex = e.context.exceptionCode;
    if (e.code === 'exception' && (ex === 10 || ex === 11)) hint = tr('cli.hint.gatewayUnit');
    else if (e.code === 'exception' && ex === 1) hint = tr('cli.hint.illegalFunction');
    else if (e.code === 'open_failed' && /cannot connect to /.test(e.message)) hint = tr('cli.hint.open_failed_tcp');
    return `${e.code}: ${e.message}${where && !e.message.includes(where) ? ` (${where})` : ''}${hint ? ` — ${hint}` : ''}`;
  }
  if (e instanceof ConfigError) return `${e.message} — ${tr('cli.hint.config')}`;
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
