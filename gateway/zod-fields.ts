/** zod field builders that speak the SPEC's error messages (`expected 1..247, got 300`), for every schema. */
import { z } from 'zod';

export const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v));

/** A number in [lo, hi] with the SPEC's message: `expected 1..247, got 300`. */
export function numIn(lo: number, hi: number, int = true) {
  const error = (iss: { input?: unknown }) =>
    `expected ${int && typeof iss.input === 'number' && !Number.isInteger(iss.input) ? 'an integer ' : ''}${lo}..${hi}, got ${show(iss.input)}`;
  const n = z.number({ error });
  return (int ? n.int({ error }) : n).min(lo, { error }).max(hi, { error });
}
export const posNum = (hi = Number.MAX_SAFE_INTEGER) => numIn(0, hi, false);
export const str = (what = 'a string') => z.string({ error: (iss) => `expected ${what}, got ${show(iss.input)}` });
export const oneOf = <T extends string>(values: readonly [T, ...T[]]) =>
  z.enum(values, { error: (iss) => `expected one of ${values.join(' | ')}, got ${show(iss.input)}` });
export const hhmm = str('a time HH:MM').regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time HH:MM (00:00..23:59)');
export const mmdd = str('a date MM-DD').regex(/^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'expected a date MM-DD');
