/** `dustgate page --config FILE [--lan]`: where the status page opens, with a QR code; `--lan` opens it to phones on the site's network. */
import type { Command } from 'commander';
import path from 'node:path';
import { action, UsageError } from './errors.js';
import { tr } from './lang.js';
import { parseIntIn } from './parse.js';

/** Print the page's URL(s) and a QR code of the first; false when the page is on the LAN but the box has no LAN address. */
export async function printPageLink(http: { bind: string; port: number; token: string }, file: string): Promise<boolean> {
  const { pageLinks, qrText } = await import('../lan.js');
  const link = pageLinks(http);
  if (!link.lan) {
    process.stdout.write(`${tr('lan.url', { url: link.urls[0] })}\n${tr('doctor.page.local', { url: link.urls[0], file })}\n`);
    return true;
  }
  if (!link.urls.length) {
    process.stderr.write(`dustgate: ${tr('lan.noAddress')}\n`);
    return false;
  }
  for (const url of link.urls) process.stdout.write(`${tr('lan.url', { url })}\n`);
  process.stdout.write(`${tr('lan.qr')}\n${await qrText(link.urls[0]!)}${tr('lan.token')}\n`);
  return true;
}

export function registerPageCommand(program: Command): void {
  program
    .command('page')
    .description("where the status page opens, with a QR code; --lan opens it to phones on the site's network (LAN bind and a generated token, written into the config)")
    .requiredOption('--config <file>', 'site config')
    .option('--lan', 'bind the page on the LAN with a generated token (written into the config)')
    .option('--bind <addr>', 'address to bind (default 0.0.0.0: every interface)')
    .option('--port <n>', 'port of the page')
    .option('--new-token', 'make a new token (the old URL stops working)')
    .addHelpText('after', '\nExample:\n  sudo dustgate page --lan --config /etc/dustgate/site.yaml && sudo systemctl restart dustgate\n')
    .action(
      action(async (o: { config: string; lan?: boolean; bind?: string; port?: string; newToken?: boolean }) => {
        const { loadConfigFile } = await import('../config/load.js');
        const file = path.resolve(o.config);
        let http = loadConfigFile(file).config.http;
        if (!o.lan && (o.bind || o.port || o.newToken)) throw new UsageError(tr('usage.needLan'));
        if (o.lan) {
          const { enableLan, lanAddresses } = await import('../lan.js');
          if (!o.bind && !lanAddresses().length) throw new UsageError(tr('lan.noAddress'));
          const r = enableLan(file, { bind: o.bind, port: o.port === undefined ? undefined : parseIntIn(o.port, '--port', 1, 65_535), rotate: o.newToken });
          http = r.http;
          process.stdout.write(`${r.changed ? tr('lan.written', { file, bind: http.bind, port: http.port }) : tr('lan.kept', { file })}\n`);
        }
        if (!(await printPageLink(http, file))) process.exit(1);
      }),
    );
}
