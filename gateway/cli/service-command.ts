/** `dustgate install-service --config FILE [--dry-run] [--root DIR]`: a systemd unit for the gateway. */
import type { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { loadConfigFile } from '../config/load.js';
import { UsageError, action } from './errors.js';
import { tr } from './lang.js';
import { parseIntIn } from './parse.js';

export interface UnitOptions {
  name: string;
  user: string;
  config: string;
  dataDir: string;
  node: string;
  cli: string;
  /** systemd's watchdog (Type=notify); 0: Type=simple without one */
  watchdogSec: number;
}

export function unitText(o: UnitOptions): string {
  return [
    '[Unit]',
    'Description=dustgate dust-control gateway',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    // notify: ready after the first poll cycle; the watchdog restarts a gateway whose control loop is stuck
    ...(o.watchdogSec > 0 ? ['Type=notify', 'NotifyAccess=main', `WatchdogSec=${o.watchdogSec}`, 'TimeoutStartSec=90'] : ['Type=simple']),
    `User=${o.user}`,
    `Group=${o.user}`,
    'SupplementaryGroups=dialout',
    `WorkingDirectory=${o.dataDir}`,
    `ExecStart=${o.node} --max-semi-space-size=4 ${o.cli} run --config ${o.config}`,
    'Restart=always',
    'RestartSec=5',
    // SIGTERM lets the gateway switch every output off and read it back before it exits
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30',
    'Environment=NODE_ENV=production',
    'NoNewPrivileges=true',
    'ProtectSystem=full',
    'ProtectHome=read-only',
    `ReadWritePaths=${o.dataDir}`,
    'PrivateTmp=true',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** The notification socket's module loads (a native binding: a bundle for the wrong arch would not). */
function notifyWorks(): boolean {
  try {
    createRequire(import.meta.url)('unix-dgram');
    return true;
  } catch {
    return false;
  }
}

/** The built CLI this process runs from (or the project's dist/cli.js when run from source). */
function cliPath(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return path.resolve(path.dirname(here), here.includes(`${path.sep}dist${path.sep}`) ? 'cli.js' : path.basename(here));
  const dist = path.resolve(path.dirname(here), '../../dist/cli.js');
  if (!existsSync(dist)) throw new UsageError(tr('usage.noBuild'));
  return dist;
}

export function registerServiceCommand(program: Command): void {
  program
    .command('install-service')
    .description('write and enable a systemd unit that runs the gateway (Restart=always, its own data folder)')
    .requiredOption('--config <file>', 'site config the service runs')
    .option('--dry-run', 'print the unit; write and enable nothing')
    .option('--root <dir>', 'write under this root instead of / (and do not call systemctl)', '/')
    .option('--name <name>', 'unit name', 'dustgate')
    .option('--user <user>', 'user the gateway runs as (needs group dialout for serial ports)', 'dustgate')
    .option('--data-dir <dir>', 'working and data folder (relative storage.path lands here)', '/var/lib/dustgate')
    .option('--no-enable', 'write the unit but do not enable or start it')
    .option('--cli <path>', 'the dustgate binary (dist/cli.js) the service runs; default: the one running now')
    .option('--journal-max-mb <n>', 'cap the systemd journal (a drop-in for journald: SD card space and wear; 0: leave it)', '64')
    .option('--node <path>', 'the node binary the service runs (default: the one running now)')
    .option('--watchdog-sec <s>', 'systemd watchdog: restart the gateway when its control loop makes no progress for this long (0: none)', '30')
    .option('--lan', "open the status page to phones on the site's network (LAN bind, a generated token in the config; prints the URL and a QR code)")
    .action(
      action(async (o: { config: string; dryRun?: boolean; root: string; name: string; user: string; dataDir: string; enable: boolean; cli?: string; node?: string; watchdogSec: string; journalMaxMb: string; lan?: boolean }) => {
        const root = path.resolve(o.root);
        // under --root (an image, a bundle's test install) paths may be given inside it or as on the box
        const onBox = (p: string) => (root !== '/' && p.startsWith(root + path.sep) ? p.slice(root.length) : p);
        const inRoot = (p: string) => (root !== '/' && !p.startsWith(root + path.sep) && !existsSync(p) ? path.join(root, p) : p);
        const config = path.resolve(o.config);
        loadConfigFile(inRoot(config)); // a service that cannot start is no service: check first
        if (!/^[\w@.-]+$/.test(o.name)) throw new UsageError(tr('usage.unitName', { got: o.name }));
        const cli = o.cli ? path.resolve(o.cli) : cliPath();
        if (!existsSync(inRoot(cli))) throw new UsageError(tr('usage.noFile', { flag: '--cli', file: cli }));
        const node = o.node ? path.resolve(o.node) : process.execPath;
        if (!existsSync(inRoot(node))) throw new UsageError(tr('usage.noFile', { flag: '--node', file: node }));
        let watchdogSec = parseIntIn(o.watchdogSec, '--watchdog-sec', 0, 3600);
        if (watchdogSec > 0 && !notifyWorks()) {
          process.stderr.write('dustgate: warning: the unix-dgram module does not load here, so the gateway cannot tell systemd it is alive: writing Type=simple without a watchdog (reinstall dustgate to fix)\n');
          watchdogSec = 0;
        }
        const unit = unitText({ name: o.name, user: o.user, config: onBox(config), dataDir: o.dataDir, node: onBox(node), cli: onBox(cli), watchdogSec });
        if (o.dryRun) {
          process.stdout.write(unit);
          return;
        }
        // the page on the site's network: written into the config before the service first starts
        const http = o.lan ? (await import('../lan.js')).enableLan(inRoot(config)).http : loadConfigFile(inRoot(config)).config.http;
        const showPage = async () => {
          if (o.lan) await (await import('./page-command.js')).printPageLink(http, inRoot(config));
        };
        const unitFile = path.join(root, 'etc/systemd/system', `${o.name}.service`);
        mkdirSync(path.dirname(unitFile), { recursive: true });
        mkdirSync(path.join(root, o.dataDir), { recursive: true });
        writeFileSync(unitFile, unit);
        process.stdout.write(`wrote ${unitFile}\ncreated ${path.join(root, o.dataDir)}\n`);
        const journalMb = parseIntIn(o.journalMaxMb, '--journal-max-mb', 0, 100_000);
        const dropIn = path.join(root, 'etc/systemd/journald.conf.d/dustgate.conf');
        if (journalMb > 0) {
          mkdirSync(path.dirname(dropIn), { recursive: true });
          writeFileSync(dropIn, `# written by dustgate install-service: a small journal on an SD card\n[Journal]\nSystemMaxUse=${journalMb}M\nRuntimeMaxUse=${Math.max(8, Math.round(journalMb / 4))}M\n`);
          process.stdout.write(`wrote ${dropIn}\n`);
        }
        if (root !== '/' || !o.enable) {
          process.stdout.write(`not enabled (${root !== '/' ? `--root ${o.root}` : '--no-enable'}); on the box: systemctl daemon-reload && systemctl enable --now ${o.name}\n`);
          await showPage();
          return;
        }
        try {
          execFileSync('systemctl', ['daemon-reload'], { stdio: 'inherit' });
          if (journalMb > 0) execFileSync('systemctl', ['restart', 'systemd-journald'], { stdio: 'inherit' });
          execFileSync('systemctl', ['enable', '--now', o.name], { stdio: 'inherit' });
        } catch (e) {
          throw new UsageError(tr('usage.systemctl', { why: (e as Error).message.split('\n')[0], file: unitFile }));
        }
        process.stdout.write(`enabled and started ${o.name}; follow it with: journalctl -u ${o.name} -f | npx pino-pretty\n`);
        await showPage();
      }),
    );
}
