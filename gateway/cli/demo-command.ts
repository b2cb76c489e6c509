/**
 * `dustgate demo` (`npm start`): the simulator on seeds/scenarios/demo.yaml, an embedded MQTT
 * broker on loopback, and the gateway on seeds/sites/demo.yaml, wired together; prints where to look.
 */
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync, mkdirSync } from 'node:fs';
import { action } from './errors.js';
import { padCols, tr } from './lang.js';
import { parseIntIn } from './parse.js';
import { failSafeOnFatal, stopOnSignals } from './run-command.js';

/** Project root, whether run from source (gateway/cli) or from the bundle (dist/). */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(path.join(dir, 'seeds'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

interface DemoOpts {
  httpPort: string;
  mqttPort: string;
  control: string;
  data: string;
  log?: string;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the demo: simulator + embedded MQTT broker + gateway on seeds/sites/demo.yaml')
    .option('--http-port <n>', 'port of the status page on 127.0.0.1', '8080')
    .option('--mqtt-port <n>', 'port of the embedded broker on 127.0.0.1', '1883')
    .option('--control <host:port>', 'simulator control API', '127.0.0.1:8081')
    .option('--data <dir>', 'folder for the buffer and the log', './data')
    .option('--log <file>', 'gateway log file (JSON lines)', '')
    .addHelpText('after', '\nThen watch it:\n  mosquitto_sub -h 127.0.0.1 -p 1883 -t "dustgate/#" -v\n')
    .action(
      action(async (o: DemoOpts) => {
        // loaded here, not at start-up: `dustgate run` should not carry the broker and the simulator
        const [{ pino }, { startEmbeddedBroker }, { loadConfigFile, resolveConfig }, { Gateway }, { topicPrefix }, { startSimulator }] = await Promise.all([
          import('pino'),
          import('../broker.js'),
          import('../config/load.js'),
          import('../gateway.js'),
          import('../uplink/mqtt.js'),
          import('./sim-command.js'),
        ]);
        const root = projectRoot();
        const mqttPort = parseIntIn(o.mqttPort, '--mqtt-port', 0, 65535);
        const httpPort = parseIntIn(o.httpPort, '--http-port', 0, 65535);
        const broker = await startEmbeddedBroker('127.0.0.1', mqttPort);
        const { sim, where } = await startSimulator({ scenario: path.join(root, 'seeds/scenarios/demo.yaml'), tcp: '127.0.0.1:0', control: o.control, wireTime: true });
        const [simHost, simPort] = where.tcp!.split(':');
        const site = path.join(root, 'seeds/sites/demo.yaml');
        const base = loadConfigFile(site).config;
        mkdirSync(o.data, { recursive: true });
        const loaded = resolveConfig(
          {
            ...base,
            buses: base.buses.map((b) => ({ ...b, host: simHost, port: Number(simPort) })),
            storage: { ...base.storage, path: path.join(o.data, 'demo-buffer.db') },
            mqtt: { ...base.mqtt, url: `mqtt://127.0.0.1:${broker.port}` },
            http: { ...base.http, bind: '127.0.0.1', port: httpPort },
          },
          site,
        );
        const logFile = o.log || path.join(o.data, 'demo-gateway.log');
        const logger = pino({ name: 'dustgate', level: 'info', timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: logFile, sync: true, mkdir: true }));
        const gw = new Gateway({ loaded, logger });
        stopOnSignals(async () => {
          await gw.stop();
          await sim.stop();
          await broker.stop();
        });
        failSafeOnFatal(gw);
        await gw.start();
        const P = topicPrefix(loaded.config.mqtt, loaded.config.gateway.id);
        const page = gw.http ? `http://127.0.0.1:${gw.http.port}/` : undefined;
        process.stdout.write(
          [
            tr('demo.running'),
            `  ${padCols(tr('demo.page'), 14)}${page ? tr('demo.pageAt', { url: page }) : tr('demo.pageNone', { port: httpPort })}`,
            `  ${padCols(tr('demo.broker'), 14)}mqtt://127.0.0.1:${broker.port}`,
            `  ${padCols(tr('demo.topics'), 14)}${P}/telemetry  ${P}/events  ${P}/state (retained)  ${P}/status (retained)  ${P}/config (retained)`,
            `  ${padCols(tr('demo.watch'), 14)}mosquitto_sub -h 127.0.0.1 -p ${broker.port} -t '${P}/#' -v`,
            `  ${padCols(tr('demo.simulator'), 14)}${tr('demo.simulatorAt', { tcp: where.tcp, control: where.control })}`,
            `  ${padCols(tr('demo.frost'), 14)}curl -X PUT ${where.control}/head/values -d '{"temperature": 3.5}'   ${tr('demo.frostWhy')}`,
            `  ${padCols(tr('demo.back'), 14)}curl -X PUT ${where.control}/head/values -d '{"temperature": null}'  ${tr('demo.backWhy')}`,
            `  ${padCols(tr('demo.log'), 14)}${tr('demo.logAt', { file: logFile })}`,
            `  ${padCols(tr('demo.buffer'), 14)}${loaded.config.storage.path}`,
            `  ${tr('demo.stop')}`,
            '',
          ].join('\n'),
        );
      }),
    );
}
