/** The command table: each command's module is imported only when that command is asked for (or for the full help). */
import { Command } from 'commander';
import { VERSION } from '../version.js';

type Register = (program: Command) => void;

const COMMANDS: Record<string, () => Promise<Register>> = {
  run: () => import('./run-command.js').then((m) => m.registerRunCommand),
  demo: () => import('./demo-command.js').then((m) => m.registerDemoCommand),
  sim: () => import('./sim-command.js').then((m) => m.registerSimCommand),
  read: () => import('./device-commands.js').then((m) => m.registerDeviceCommands),
  write: () => import('./device-commands.js').then((m) => m.registerDeviceCommands),
  config: () => import('./config-command.js').then((m) => m.registerConfigCommand),
  buffer: () => import('./buffer-command.js').then((m) => m.registerBufferCommand),
  remote: () => import('./remote-command.js').then((m) => m.registerRemoteCommand),
  'hj212-platform': () => import('./hj212-command.js').then((m) => m.registerHj212Command),
  'install-service': () => import('./service-command.js').then((m) => m.registerServiceCommand),
  doctor: () => import('./doctor-command.js').then((m) => m.registerDoctorCommand),
  scan: () => import('./scan-command.js').then((m) => m.registerScanCommand),
};

export async function runCli(args: string[]): Promise<void> {
  const program = new Command();
  program
    .name('dustgate')
    .description('Edge gateway for construction-site and road dust control')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');
  const wanted = COMMANDS[args.find((a) => !a.startsWith('-')) ?? ''];
  // one command: only its module; anything else (help, a typo): every command, so the help lists them all
  const loaders = wanted ? [wanted] : [...new Set(Object.values(COMMANDS))];
  const registered = new Set<Register>();
  for (const register of await Promise.all(loaders.map((l) => l()))) {
    if (registered.has(register)) continue;
    registered.add(register);
    register(program);
  }
  program.configureOutput({ outputError: (str, write) => write(`dustgate: ${str.replace(/^error: /, '')}`) });
  await program.parseAsync(args, { from: 'user' });
}
