/** `dustgate buffer stats|export --config FILE`: look into the local store-and-forward buffer. */
import type { Command } from 'commander';
import { createWriteStream, existsSync } from 'node:fs';
import { once } from 'node:events';
import { loadConfigFile } from '../config/load.js';
import { Store } from '../store.js';
import { UsageError, action } from './errors.js';

function openStore(configFile: string): Store {
  const { config } = loadConfigFile(configFile);
  if (!existsSync(config.storage.path)) throw new UsageError(`no buffer at ${config.storage.path} (storage.path of ${configFile}): has the gateway run with this config here?`);
  return new Store({ path: config.storage.path, maxMB: config.storage.maxMB, readonly: true });
}

const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function registerBufferCommand(program: Command): void {
  const buffer = program.command('buffer').description('inspect or export the local buffer (records not yet acknowledged by the broker)');
  buffer
    .command('stats')
    .description('depth, oldest record, size against the cap, evictions')
    .requiredOption('--config <file>', 'site config (its storage.path is the buffer)')
    .option('--json', 'print JSON')
    .action(
      action(async (o: { config: string; json?: boolean }) => {
        const store = openStore(o.config);
        const s = store.stats();
        store.close();
        if (o.json) {
          process.stdout.write(`${JSON.stringify(s)}\n`);
          return;
        }
        const age = s.oldestTs ? `${Math.round((Date.now() - Date.parse(s.oldestTs)) / 1000)} s` : '-';
        const mb = (b: number) => `${(b / 1048576).toFixed(2)} MB`;
        process.stdout.write(
          [
            `buffer     ${s.path}`,
            `records    ${s.telemetry + s.events} (telemetry ${s.telemetry}, events ${s.events})`,
            `oldest     ${s.oldestSeq ?? '-'} ${s.oldestTs ?? ''} (age ${age})`,
            `last seq   ${s.lastSeq}`,
            `size       ${mb(s.bytes)} of ${mb(s.capBytes)} cap (file ${mb(s.fileBytes)})`,
            `evicted    ${s.evicted.telemetry + s.evicted.events} (telemetry ${s.evicted.telemetry}, events ${s.evicted.events})`,
            '',
          ].join('\n'),
        );
      }),
    );
  buffer
    .command('export')
    .description('write every buffered record, oldest first')
    .requiredOption('--config <file>', 'site config (its storage.path is the buffer)')
    .option('--format <format>', 'jsonl | csv', 'jsonl')
    .option('--out <file>', 'write to FILE instead of stdout')
    .action(
      action(async (o: { config: string; format: string; out?: string }) => {
        if (o.format !== 'jsonl' && o.format !== 'csv') throw new UsageError(`--format: expected jsonl or csv, got "${o.format}"`);
        const store = openStore(o.config);
        const total = store.depth;
        const out = o.out ? createWriteStream(o.out) : process.stdout;
        const { SingleBar, Presets } = await import('cli-progress');
        const bar = new SingleBar({ format: 'export [{bar}] {percentage}% {value}/{total} records, eta {eta}s', stream: process.stderr }, Presets.shades_classic);
        bar.start(total, 0);
        if (o.format === 'csv') out.write('seq,kind,ts,device,type,body\n');
        let n = 0;
        for (const r of store.iterate()) {
          let line: string;
          if (o.format === 'jsonl') line = `{"seq":${r.seq},"kind":"${r.kind}",${r.body.slice(1)}\n`;
          else {
            const b = JSON.parse(r.body) as { ts?: string; device?: string; type?: string };
            line = `${r.seq},${r.kind},${b.ts ?? ''},${csvCell(b.device ?? '')},${csvCell(b.type ?? '')},${csvCell(r.body)}\n`;
          }
          if (!out.write(line)) await once(out, 'drain');
          if (++n % 1000 === 0) bar.update(n);
        }
        bar.update(n);
        bar.stop();
        store.close();
        if (o.out) {
          (out as ReturnType<typeof createWriteStream>).end();
          await once(out, 'finish');
          process.stderr.write(`exported ${n} records to ${o.out}\n`);
        }
      }),
    );
}
