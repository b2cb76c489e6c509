/** `dustgate config validate FILE` / `dustgate config schema`. */
import type { Command } from 'commander';
import { ConfigError, configJsonSchema, loadConfigFile } from '../config/load.js';
import { UsageError, action } from './errors.js';
import { tr } from './lang.js';

export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('check a site config, or print its JSON Schema');
  config
    .command('validate')
    .description('validate a site config; every problem is printed as FILE: PATH: what was expected')
    .argument('<file>', 'site config (YAML or JSON)')
    .option('--print', 'print the effective config (preset merged, defaults filled) as JSON')
    .action(
      action(async (file: string, o: { print?: boolean }) => {
        try {
          const { config: c, warnings, preset } = loadConfigFile(file);
          for (const w of warnings) process.stderr.write(`${file}: warning: ${w.path}: ${w.message}\n`);
          if (o.print) process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
          else
            process.stdout.write(
              `${file}: ok (gateway ${c.gateway.id}, preset ${preset.name}, ${c.buses.length} buses, ${c.devices.length} devices, ${Object.keys(c.outputs).length} outputs, ${Object.keys(c.inputs).length} inputs)\n`,
            );
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          for (const i of e.issues) process.stderr.write(`${file}: ${i.path ? `${i.path}: ` : ''}${i.message}\n`);
          process.exit(1);
        }
      }),
    );
  config
    .command('history')
    .description('list the last applied config versions (the site file, then remote changes) from the buffer database')
    .requiredOption('--config <file>', 'site config (its storage.path holds the versions)')
    .option('--json', 'print JSON')
    .option('--show <version>', 'print one version\'s config (secrets redacted)')
    .action(
      action(async (o: { config: string; json?: boolean; show?: string }) => {
        const { existsSync } = await import('node:fs');
        const { Store } = await import('../store.js');
        const { resolveConfig, redact } = await import('../config/load.js');
        const { config: c } = loadConfigFile(o.config);
        if (!existsSync(c.storage.path)) throw new UsageError(tr('usage.noBuffer', { file: c.storage.path }));
        const store = new Store({ path: c.storage.path, maxMB: c.storage.maxMB, readonly: true });
        const versions = store.versions.history();
        store.close();
        if (o.show !== undefined) {
          const v = versions.find((x) => x.version === Number(o.show));
          if (!v) throw new UsageError(tr('usage.noVersion', { version: o.show, kept: versions.map((x) => x.version).join(', ') }));
          process.stdout.write(`${JSON.stringify(redact(resolveConfig(JSON.parse(v.config)).config), null, 2)}\n`);
          return;
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify(versions.map(({ config: _c, baseHash: _b, ...rest }) => rest))}\n`);
          return;
        }
        process.stdout.write('version  applied                   source    request\n');
        for (const v of versions) process.stdout.write(`${String(v.version).padEnd(8)} ${v.ts.padEnd(25)} ${v.source.padEnd(9)} ${v.requestId ?? '-'}\n`);
      }),
    );
  config
    .command('schema')
    .description('print the JSON Schema of the site config (for editors: yaml-language-server)')
    .action(
      action(async () => {
        process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      }),
    );
}
