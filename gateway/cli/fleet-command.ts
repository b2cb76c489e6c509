/** `dustgate fleet-sim --gateways N --broker URL`: N simulated gateways in one process against a broker (what a city sees). */
import type { Command } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { action, UsageError } from './errors.js';
import { tr } from './lang.js';
import { parseIntIn } from './parse.js';

export function registerFleetCommand(program: Command): void {
  program
    .command('fleet-sim')
    .description('run N lightweight simulated gateways (own client id, store and backlog, the real uplink) against a broker; reports reconnects and drain')
    .requiredOption('--broker <url>', 'the broker, e.g. mqtt://127.0.0.1:1883')
    .option('--gateways <n>', 'how many gateways', '100')
    .option('--backlog-min <m>', 'minutes of readings each gateway holds at start (an outage just ended)', '10')
    .option('--seconds <s>', 'how long to run', '60')
    .option('--max-per-s <n>', 'each gateway\'s drain ceiling (mqtt.maxPerS)', '5000')
    .option('--reconnect-max-s <s>', 'reconnect backoff ceiling (mqtt.reconnectMaxS)', '30')
    .option('--dir <dir>', 'where the stores go (default: a temporary folder)')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', '\nExample (restart the broker while it runs to see the fleet come back):\n  dustgate fleet-sim --gateways 200 --broker mqtt://127.0.0.1:1883 --seconds 120\n')
    .action(
      action(async (o: { broker: string; gateways: string; backlogMin: string; seconds: string; maxPerS: string; reconnectMaxS: string; dir?: string; json?: boolean }) => {
        if (!/^mqtts?:\/\//.test(o.broker)) throw new UsageError(tr('usage.brokerUrl', { got: o.broker }));
        const n = parseIntIn(o.gateways, '--gateways', 1, 10_000);
        const seconds = parseIntIn(o.seconds, '--seconds', 1, 86_400);
        const { FleetSim } = await import('../fleet.js');
        const { pino } = await import('pino');
        const dir = o.dir ?? mkdtempSync(path.join(os.tmpdir(), 'dustgate-fleet-'));
        const fleet = new FleetSim({
          gateways: n,
          url: o.broker,
          dir,
          logger: pino({ level: 'silent' }),
          mqtt: { maxPerS: parseIntIn(o.maxPerS, '--max-per-s', 0, 1_000_000), reconnectMaxS: parseIntIn(o.reconnectMaxS, '--reconnect-max-s', 1, 3600) },
        });
        const t0 = Date.now();
        const connects: number[] = [];
        await fleet.start();
        for (const m of fleet.members) m.uplink.on('connect', () => connects.push(Date.now()));
        const backlog = fleet.fillBacklog(parseIntIn(o.backlogMin, '--backlog-min', 0, 24 * 60) * 60);
        let drainedAt: number | undefined;
        const sample = setInterval(() => {
          const depth = fleet.depth;
          if (drainedAt === undefined && depth <= n) drainedAt = Date.now(); // at most each gateway's live reading waiting
          if (!o.json) process.stderr.write(`${Math.round((Date.now() - t0) / 1000)} s: ${fleet.connected}/${n} connected, ${depth} records waiting\n`);
        }, 1000);
        await new Promise((r) => setTimeout(r, seconds * 1000));
        clearInterval(sample);
        const perSecond = new Map<number, number>();
        for (const t of connects) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
        const summary = {
          gateways: n,
          backlog,
          connected: fleet.connected,
          waiting: fleet.depth,
          drainedAfterS: drainedAt === undefined ? null : (drainedAt - t0) / 1000,
          connects: connects.length,
          peakConnectsPerS: Math.max(0, ...perSecond.values()),
          published: fleet.members.reduce((s, m) => s + m.uplink.counters.acked, 0),
          dir,
        };
        await fleet.stop();
        process.stdout.write(o.json ? `${JSON.stringify(summary)}\n` : `${Object.entries(summary).map(([k, v]) => `${k}: ${v}`).join('\n')}\n`);
      }),
    );
}
