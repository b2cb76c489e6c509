/** `dustgate config validate FILE` / `dustgate config schema`. */
import type { Command } from 'commander';
import { ConfigError, configJsonSchema, loadConfigFile } from '../config/load.js';
import { action } from './errors.js';

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
    .command('schema')
    .description('print the JSON Schema of the site config (for editors: yaml-language-server)')
    .action(
      action(async () => {
        process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      }),
    );
}
