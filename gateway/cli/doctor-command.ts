/** `dustgate doctor --config FILE`: one line per check, with the fix; exit 1 on any failure. */
import type { Command } from 'commander';
import { action } from './errors.js';
import { cliLocale, padCols, tr } from './lang.js';
import { parseIntIn } from './parse.js';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check a site before leaving it: config, serial ports and permissions, every device, broker with TLS/credentials, clock, disk')
    .requiredOption('--config <file>', 'site config')
    .option('--timeout <ms>', 'time-out per device and connection', '3000')
    .option('--json', 'print the checks as JSON')
    .action(
      action(async (o: { config: string; timeout: string; json?: boolean }) => {
        const { runDoctor } = await import('../doctor.js');
        const checks = await runDoctor(o.config, { timeoutMs: parseIntIn(o.timeout, '--timeout', 50, 60_000), locale: cliLocale() });
        if (o.json) process.stdout.write(`${JSON.stringify(checks)}\n`);
        else
          for (const c of checks) {
            process.stdout.write(`${padCols(tr(c.ok ? 'doctor.ok' : 'doctor.fail'), 4)}  ${padCols(c.label, 16)} ${c.detail}${c.fix ? ` — ${c.fix}` : ''}\n`);
            if (c.url) process.stdout.write(await (await import('../lan.js')).qrText(c.url));
          }
        const failed = checks.filter((c) => !c.ok).length;
        if (!o.json) process.stdout.write(`${failed ? tr('doctor.summary.failed', { failed, total: checks.length }) : tr('doctor.summary.passed', { total: checks.length })}\n`);
        if (failed) process.exit(1);
      }),
    );
}
