/** `dustgate ingest --broker URL [--db FILE|postgres://…]`: the reference consumer of a fleet's telemetry and events (gateway/ingest.ts). */
import type { Command } from 'commander';
import { action, UsageError } from './errors.js';
import { tr } from './lang.js';
import { parseIntIn } from './parse.js';

interface IngestFlags {
  broker: string;
  db: string;
  group: string;
  clientId?: string;
  topicPrefix: string;
  sessionExpiryS: string;
  username?: string;
  password?: string;
  ca?: string;
  statsS: string;
}

export function registerIngestCommand(program: Command): void {
  program
    .command('ingest')
    .description('consume a fleet\'s telemetry, events and aggregates (MQTT 5 shared subscription) into SQLite or PostgreSQL, each (gateway, seq) once')
    .requiredOption('--broker <url>', 'the broker, e.g. mqtt://127.0.0.1:1883')
    .option('--db <file|url>', 'a SQLite file, or a PostgreSQL URL (postgres://user:pass@host:5432/db)', 'dustgate-ingest.db')
    .option('--group <name>', 'shared-subscription group: consumers with the same group split the fleet ("" for no sharing)', 'dustgate-ingest')
    .option('--client-id <id>', 'stable client id (the broker keeps this consumer\'s session under it; give each consumer its own)')
    .option('--topic-prefix <p>', 'the gateways\' mqtt.topicPrefix', 'dustgate')
    .option('--session-expiry-s <s>', 'how long the broker keeps what arrives while this consumer is away', '86400')
    .option('--username <u>', 'broker user')
    .option('--password <p>', 'broker password (or DUSTGATE_MQTT_PASSWORD)')
    .option('--ca <file>', 'CA certificate for mqtts://')
    .option('--stats-s <s>', 'print the counters as a JSON line on stdout every so often (0: only at exit)', '10')
    .addHelpText(
      'after',
      '\nExamples:\n  dustgate ingest --broker mqtt://10.0.0.5:1883 --db /var/lib/dustgate/city.db\n  dustgate ingest --broker mqtt://10.0.0.5:1883 --db postgres://dustgate@db:5432/city --client-id ingest-a\n  (a second consumer with --client-id ingest-b and the same --group takes half of the fleet)\n',
    )
    .action(
      action(async (o: IngestFlags) => {
        if (!/^(mqtts?|wss?):\/\//.test(o.broker)) throw new UsageError(tr('usage.brokerUrl', { got: o.broker }));
        const sessionExpiryS = parseIntIn(o.sessionExpiryS, '--session-expiry-s', 0, 4_294_967_295);
        const statsS = parseIntIn(o.statsS, '--stats-s', 0, 86_400);
        const [{ openSink }, { Ingest }, { createLogger }] = await Promise.all([import('../ingest-sinks.js'), import('../ingest.js'), import('../log.js')]);
        let sink;
        try {
          sink = await openSink(o.db);
        } catch (e) {
          throw new UsageError(tr('usage.ingestDb', { db: o.db.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@'), why: (e as Error).message }));
        }
        const logger = createLogger('dustgate-ingest', undefined, 2);
        const ingest = new Ingest({
          url: o.broker,
          sink,
          logger,
          group: o.group,
          ...(o.clientId ? { clientId: o.clientId } : {}),
          topicPrefix: o.topicPrefix,
          sessionExpiryS,
          ...(o.username ? { username: o.username, password: o.password ?? process.env.DUSTGATE_MQTT_PASSWORD } : {}),
          ...(o.ca ? { ca: o.ca } : {}),
        });
        const stats = () => process.stdout.write(`${JSON.stringify({ ts: new Date().toISOString(), db: sink.name, ...ingest.counters })}\n`);
        const timer = statsS > 0 ? setInterval(stats, statsS * 1000) : undefined;
        let stopping = false;
        const stop = async () => {
          if (stopping) return;
          stopping = true;
          if (timer) clearInterval(timer);
          await ingest.stop().catch(() => undefined);
          stats();
          process.exit(0);
        };
        process.on('SIGTERM', () => void stop());
        process.on('SIGINT', () => void stop());
        await ingest.start();
        logger.info({ db: sink.name, topics: ingest.topics }, 'ingesting');
      }),
    );
}
