/**
 * `dustgate demo` (`npm start`). Until the gateway core lands (issue 3) this starts the simulator
 * alone on the demo scenario and says so.
 */
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { action } from './errors.js';
import { startSimulator } from './sim-command.js';

/** Project root, whether run from source (gateway/cli) or from the bundle (dist/). */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'seeds'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the demo: the simulator on seeds/scenarios/demo.yaml (the gateway joins it once the core lands)')
    .option('--tcp <host:port>', 'simulator Modbus TCP address', '127.0.0.1:1502')
    .option('--control <host:port>', 'simulator control API address', '127.0.0.1:8081')
    .action(
      action(async (o: { tcp: string; control: string }) => {
        const scenario = path.join(projectRoot(), 'seeds/scenarios/demo.yaml');
        const { sim, where } = await startSimulator({ scenario, tcp: o.tcp, control: o.control, wireTime: true });
        process.stdout.write(
          [
            'dustgate demo: the simulator is running (the gateway itself is not part of this build yet).',
            `  devices:      ${sim.devices.map((d) => `${d.id} (${d.definition.name}, unit ${d.unit})`).join(', ')}`,
            `  Modbus TCP:   ${where.tcp}`,
            `  control API:  ${where.control}`,
            `  try:          npx tsx gateway/cli/main.ts read --host ${where.tcp} --driver cwt-weather-station --unit 1`,
            '  stop with Ctrl-C',
            '',
          ].join('\n'),
        );
        const stop = async () => {
          await sim.stop();
          process.exit(0);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      }),
    );
}
