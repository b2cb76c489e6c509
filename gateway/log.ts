/** JSON-lines logging (pino). Read them with `| npx pino-pretty`. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** `fd` 2 for commands whose stdout carries their own output (`dustgate ingest`'s counters). */
export function createLogger(name: string, level = process.env.DUSTGATE_LOG_LEVEL ?? 'info', fd: 1 | 2 = 1): Logger {
  return pino({ name, level, timestamp: pino.stdTimeFunctions.isoTime }, fd === 1 ? undefined : pino.destination({ fd, sync: true }));
}
