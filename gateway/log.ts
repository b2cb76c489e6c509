/** JSON-lines logging (pino). Read them with `| npx pino-pretty`. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.DUSTGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, timestamp: pino.stdTimeFunctions.isoTime });
}
