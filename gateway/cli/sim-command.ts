/** `dustgate sim`: run the hardware simulator alone. */
import type { Command } from 'commander';
import type { Simulator } from '../../simulator/simulator.js';
import { createLogger } from '../log.js';
import { action } from './errors.js';
import { parseHostPort } from './parse.js';

interface SimOpts {
  scenario: string;
  tcp?: string;
  pty?: string[];
  rtuOverTcp?: string;
  control?: string;
  wireTime: boolean;
}

/** `--pty PATH` serves line "main"; `--pty LINE=PATH` serves a named line of the scenario. */
function parsePty(s: string): { line: string; path: string } {
  const eq = s.indexOf('=');
  return eq > 0 && !s.startsWith('/') ? { line: s.slice(0, eq), path: s.slice(eq + 1) } : { line: 'main', path: s };
}

export async function startSimulator(o: SimOpts): Promise<{ sim: Simulator; where: Record<string, string> }> {
  const [{ loadScenario }, { Simulator }] = await Promise.all([import('../../simulator/scenario.js'), import('../../simulator/simulator.js')]);
  const scenario = loadScenario(o.scenario);
  const sim = new Simulator(scenario, { wireTime: o.wireTime });
  const where: Record<string, string> = {};
  try {
    if (o.tcp) {
      const { host, port } = parseHostPort(o.tcp, '--tcp');
      const s = await sim.serveTcp(host, port);
      where.tcp = `${host}:${s.port}`;
    }
    if (o.rtuOverTcp) {
      const { host, port } = parseHostPort(o.rtuOverTcp, '--rtu-over-tcp');
      const s = await sim.serveRtuOverTcp(host, port);
      where.rtuOverTcp = `${host}:${s.port}`;
    }
    for (const p of o.pty ?? []) {
      const { line, path } = parsePty(p);
      // a line holding a firmata-io device is an Arduino: it speaks StandardFirmata, not Modbus
      if (sim.devicesOn(line).some((d) => d.definition.kind === 'firmata')) {
        await sim.serveFirmataPty(path, line);
        where[`firmata:${line}`] = path;
      } else {
        await sim.servePty(path, line);
        where[`pty:${line}`] = path;
      }
    }
    if (o.control) {
      const { host, port } = parseHostPort(o.control, '--control');
      const api = await sim.startControl(host, port);
      where.control = `http://${host}:${api.port}/devices`;
    }
  } catch (e) {
    await sim.stop();
    throw e;
  }
  return { sim, where };
}

export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .description('run the hardware simulator: virtual devices from a scenario file')
    .requiredOption('--scenario <file>', 'scenario YAML (see seeds/scenarios/)')
    .option('--tcp <host:port>', 'serve every Modbus device over Modbus TCP')
    .option('--rtu-over-tcp <host:port>', 'serve line "main" as a transparent serial server (RTU frames over TCP)')
    .option('--pty <[line=]path>', 'serve a line on a pseudo-terminal at PATH (needs socat); a line with a firmata-io device speaks StandardFirmata; repeatable', (v: string, acc: string[] = []) => [...acc, v])
    .option('--control <host:port>', 'control API (GET /devices, PUT /devices/:id/values, PUT /devices/:id/faults)', '127.0.0.1:8081')
    .option('--no-wire-time', 'answer serial requests at once instead of after the real wire time')
    .addHelpText(
      'after',
      '\nExamples:\n  dustgate sim --scenario seeds/scenarios/demo.yaml --tcp 127.0.0.1:1502 --pty /tmp/dustgate-rtu\n  dustgate sim --scenario seeds/scenarios/small-site-arduino.yaml --pty main=/tmp/dustgate-rtu --pty io=/tmp/dustgate-acm0\n',
    )
    .action(
      action(async (o: SimOpts) => {
        if (!o.tcp && !o.pty?.length && !o.rtuOverTcp) o.tcp = '127.0.0.1:1502';
        const log = createLogger('dustgate-sim');
        const { sim, where } = await startSimulator(o);
        log.info({ scenario: o.scenario, devices: sim.devices.map((d) => `${d.id}@${d.line}/${d.unit} ${d.definition.name}`), ...where }, 'simulator running');
        const stop = async () => {
          await sim.stop();
          process.exit(0);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      }),
    );
}
