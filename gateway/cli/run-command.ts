/** `dustgate run --config FILE`: the gateway itself. */
import type { Command } from 'commander';
import { loadConfigFile } from '../config/load.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { SystemdNotifier, Watchdog } from '../watchdog.js';
import { watchClockSync } from '../clock-sync.js';
import { action } from './errors.js';

/** Stop cleanly on SIGTERM/SIGINT (outputs off, buffer flushed); a second signal exits at once. */
export function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`dustgate: ${sig}: switching outputs off and closing\n`);
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`dustgate: error while stopping: ${String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * An error nothing caught means the gateway can no longer be trusted to run its rules: every relay
 * channel off and read back, then exit non-zero (systemd restarts it). Safety first (SPEC §1).
 */
export function failSafeOnFatal(gw: Gateway): void {
  let failing = false;
  const onFatal = (e: unknown) => {
    process.stderr.write(`dustgate: fatal: ${String((e as Error)?.stack ?? e)}\n`);
    if (failing) return;
    failing = true;
    const exit = setTimeout(() => process.exit(70), 10_000);
    gw.failSafe(`fatal error: ${String((e as Error)?.message ?? e)}`).finally(() => {
      clearTimeout(exit);
      process.exit(70);
    });
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
}

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description('run the gateway on a site config')
    .requiredOption('--config <file>', 'site config (YAML or JSON; examples in seeds/sites/)')
    .addHelpText('after', '\nLogs are JSON lines on stdout; read them with `| npx pino-pretty`.\nUnder systemd (NOTIFY_SOCKET) it says READY=1 after the first poll cycle and pings the watchdog (WATCHDOG_USEC) while the control loop runs.\nExample:\n  dustgate run --config seeds/sites/construction-zhengzhou.yaml\n')
    .action(
      action(async (o: { config: string }) => {
        const loaded = loadConfigFile(o.config);
        const logger = createLogger('dustgate');
        const gw = new Gateway({ loaded, logger });
        // under systemd (Type=notify): READY after the first poll cycle, pings while the control loop runs
        const notifier = new SystemdNotifier(undefined, logger);
        const watchdog = new Watchdog(gw, notifier, { logger });
        // NTP: asked every minute (every 10 once synchronised); until it has set the clock, records are flagged and HJ 212 may set the time
        const stopSync = watchClockSync(gw.clock, { logger });
        stopOnSignals(async () => {
          stopSync();
          watchdog.stopping();
          await gw.stop();
          notifier.close();
        });
        failSafeOnFatal(gw);
        await gw.start();
        void watchdog.ready();
      }),
    );
}
