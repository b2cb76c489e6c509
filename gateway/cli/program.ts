/** The command table: each command's module is imported only when that command is asked for (or for the full help). */
import { Command, type Option } from 'commander';
import { VERSION } from '../version.js';
import { has } from '../i18n.js';
import { cliLocale, takeLang, tr } from './lang.js';

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
  page: () => import('./page-command.js').then((m) => m.registerPageCommand),
  'fleet-sim': () => import('./fleet-command.js').then((m) => m.registerFleetCommand),
  ingest: () => import('./ingest-command.js').then((m) => m.registerIngestCommand),
};

/** Commander's own headings, in Chinese. */
const TITLES_ZH: Record<string, string> = { 'Usage:': '用法：', 'Options:': '选项：', 'Commands:': '命令：', 'Arguments:': '参数：', 'Global Options:': '全局选项：' };
const HELP_ZH = {
  styleTitle: (s: string) => TITLES_ZH[s] ?? s,
  optionDescription: (o: Option) => o.description + (o.defaultValue !== undefined && !o.negate ? `（默认：${o.defaultValueDescription ?? JSON.stringify(o.defaultValue)}）` : ''),
};

export async function runCli(argv: string[]): Promise<void> {
  const args = takeLang(argv);
  const zh = cliLocale() === 'zh-CN';
  const program = new Command();
  program
    .name('dustgate')
    .description(tr('cli.desc.program'))
    .version(VERSION, '-V, --version', tr('cli.opt.version'))
    .helpOption('-h, --help', tr('cli.opt.help'))
    .option('--lang <locale>', tr('cli.opt.lang'))
    .showHelpAfterError(tr('cli.help.after'));
  if (zh) program.configureHelp(HELP_ZH).helpCommand('help [command]', tr('cli.help.command'));
  const wanted = COMMANDS[args.find((a) => !a.startsWith('-')) ?? ''];
  // one command: only its module; anything else (help, a typo): every command, so the help lists them all
  const loaders = wanted ? [wanted] : [...new Set(Object.values(COMMANDS))];
  const registered = new Set<Register>();
  for (const register of await Promise.all(loaders.map((l) => l()))) {
    if (registered.has(register)) continue;
    registered.add(register);
    register(program);
  }
  // command summaries in the CLI's language (the modules write them in English)
  if (zh)
    for (const c of program.commands) {
      c.description(tr(`cli.desc.${c.name()}`));
      for (const o of c.options) {
        const key = `cli.opt.${c.name()}.${o.attributeName()}`;
        if (has('zh-CN', key)) o.description = tr(key);
      }
      c.helpOption('-h, --help', tr('cli.opt.help'));
      c.configureHelp(HELP_ZH);
    }
  program.configureOutput({ outputError: (str, write) => write(`dustgate: ${str.replace(/^error: /, '')}`) });
  await program.parseAsync(args, { from: 'user' });
}
