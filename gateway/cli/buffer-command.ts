/** `dustgate buffer stats|export --config FILE`: look into the local store-and-forward buffer. */
import type { Command } from 'commander';
import { createWriteStream, existsSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { loadConfigFile } from '../config/load.js';
import { Store, storageErrorCode } from '../store.js';
import { hint } from '../storage-guard.js';
import { UsageError, action } from './errors.js';
import { tr } from './lang.js';

function openStore(configFile: string): Store {
  const { config } = loadConfigFile(configFile);
  const file = config.storage.path;
  if (!existsSync(file)) throw new UsageError(tr('usage.noBuffer', { file: `${file} (storage.path of ${configFile})` }));
  try {
    return new Store({ path: file, maxMB: config.storage.maxMB, readonly: true });
  } catch (e) {
    throw new UsageError(tr('usage.bufferUnreadable', { file, why: explainStorage(e, file) }));
  }
}

/** A storage error as what is wrong and what to do (a full disk says "disk I/O error" to a reader). */
export function explainStorage(e: unknown, file: string): string {
  const code = storageErrorCode(e);
  let freeKB: number | undefined;
  try {
    const st = statfsSync(path.dirname(path.resolve(file)));
    freeKB = Math.floor((st.bavail * st.bsize) / 1024);
  } catch {
    /* no file system to ask */
  }
  if (code === 'disk_full' || (freeKB !== undefined && freeKB < 256 && (code === 'io_error' || code === 'storage_error')))
    return `the disk is full (${freeKB ?? 0} KB free at ${path.dirname(path.resolve(file))}; SQLite said: ${(e as Error).message}) — free space there, then run this again (the gateway keeps polling and applying its rules meanwhile)`;
  if (code === 'cannot_open') return `${(e as Error).message} — storage.path must name a file, not a directory`;
  if (code === 'corrupt') return `${(e as Error).message} — the file is not a dustgate buffer or is damaged`;
  return `${(e as Error).message}${code ? ` — ${hint(code)}` : ''}`;
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
        let s: ReturnType<Store['stats']>;
        try {
          s = store.stats();
        } catch (e) {
          throw new UsageError(tr('usage.bufferUnreadable', { file: store.opts.path, why: explainStorage(e, store.opts.path) }));
        } finally {
          store.close();
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify(s)}\n`);
          return;
        }
        const age = s.oldestTs ? `${Math.round((Date.now() - Date.parse(s.oldestTs)) / 1000)} s` : '-';
        const mb = (b: number) => `${(b / 1048576).toFixed(2)} MB`;
        process.stdout.write(
          [
            `buffer     ${s.path}`,
            `records    ${s.telemetry + s.events + s.aggregates} (telemetry ${s.telemetry}, events ${s.events}, aggregates ${s.aggregates})`,
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
        if (o.format !== 'jsonl' && o.format !== 'csv') throw new UsageError(tr('usage.format', { got: o.format }));
        const store = openStore(o.config);
        let total: number;
        try {
          total = store.depth;
        } catch (e) {
          store.close();
          throw new UsageError(tr('usage.bufferUnreadable', { file: store.opts.path, why: explainStorage(e, store.opts.path) }));
        }
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
