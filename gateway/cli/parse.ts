/** Option value parsers that turn bad input into one clear line. */
import { UsageError } from './errors.js';
import { tr } from './lang.js';

export function parseHostPort(s: string, flag: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 0 || port > 65535) throw new UsageError(tr('usage.hostPort', { flag, got: s }));
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function parseIntIn(s: string, flag: string, min: number, max: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(tr('usage.intIn', { flag, min: String(min), max: String(max), got: s }));
  return n;
}
