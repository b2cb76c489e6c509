/** The `dustgate` binary. */
import { Command } from 'commander';
import { registerDeviceCommands } from './device-commands.js';
import { registerDemoCommand } from './demo-command.js';
import { registerSimCommand } from './sim-command.js';
import { registerRunCommand } from './run-command.js';
import { registerConfigCommand } from './config-command.js';
import { registerBufferCommand } from './buffer-command.js';
import { registerRemoteCommand } from './remote-command.js';
import { registerHj212Command } from './hj212-command.js';
import { registerServiceCommand } from './service-command.js';
import { registerDoctorCommand } from './doctor-command.js';
import { registerScanCommand } from './scan-command.js';
import { VERSION } from '../version.js';

const program = new Command();
program
  .name('dustgate')
  .description('Edge gateway for construction-site and road dust control')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)');

registerRunCommand(program);
registerDemoCommand(program);
registerSimCommand(program);
registerDeviceCommands(program);
registerConfigCommand(program);
registerBufferCommand(program);
registerRemoteCommand(program);
registerHj212Command(program);
registerServiceCommand(program);
registerDoctorCommand(program);
registerScanCommand(program);

program.configureOutput({ outputError: (str, write) => write(`dustgate: ${str.replace(/^error: /, '')}`) });
await program.parseAsync(process.argv);
