/** `dustgate hj212-platform --port N`: a stand-in HJ 212 platform for installers and tests. */
import type { Command } from 'commander';
import { action } from './errors.js';
import { parseIntIn } from './parse.js';

export function registerHj212Command(program: Command): void {
  program
    .command('hj212-platform')
    .description('a stand-in HJ 212 platform: accepts uploads, checks length and CRC, acks (9014), logs each packet as a JSON line')
    .requiredOption('--port <n>', 'TCP port to listen on')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--no-ack', 'never answer 9014 (to watch a gateway retry)')
    .option('--backfill <cn>', 'on each connection ask for back-fill: 2051, 2061 or 2031 (with --from/--to)')
    .option('--from <time>', 'back-fill BeginTime, YYYYMMDDhhmmss (local)')
    .option('--to <time>', 'back-fill EndTime, YYYYMMDDhhmmss (local)')
    .option('--mn <mn>', 'MN to address back-fill requests to (default: the MN of the first packet)')
    .action(
      action(async (o: { port: string; host: string; ack: boolean; backfill?: string; from?: string; to?: string; mn?: string }) => {
        const { Hj212Platform } = await import('../hj212/platform.js');
        const port = parseIntIn(o.port, '--port', 0, 65535);
        const p = new Hj212Platform({ host: o.host, port, ack: o.ack });
        await p.start();
        const out = (x: unknown) => process.stdout.write(`${JSON.stringify(x)}\n`);
        out({ event: 'listening', host: o.host, port: p.port, ack: o.ack });
        let asked = false;
        p.on('packet', (r: { cn: string; qn: string; mn: string; flag: number; dataTime?: string; text: string }) => {
          out({ event: 'packet', cn: r.cn, qn: r.qn, mn: r.mn, flag: r.flag, dataTime: r.dataTime, text: r.text.trimEnd() });
          if (o.backfill && !asked) {
            asked = true;
            const qn = p.request({ cn: o.backfill, mn: o.mn ?? r.mn, cp: [[['BeginTime', o.from ?? '']], [['EndTime', o.to ?? '']]] });
            out({ event: 'backfill-request', cn: o.backfill, qn, from: o.from, to: o.to });
          }
        });
        p.on('bad-packet', (e: { code: string; message: string }) => out({ event: 'bad-packet', ...e }));
        p.on('connection', () => {
          asked = false;
          out({ event: 'connection' });
        });
        const stop = async () => {
          await p.stop();
          process.exit(0);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      }),
    );
}
