/** `dustgate read` and `dustgate write`: one-off access to one device on a port or host. */
import type { Command } from 'commander';
import { Bus, type BusConfig } from '../../drivers/bus.js';
import { DeviceClient } from '../../drivers/device.js';
import { DRIVER_NAMES, getDefinition } from '../../drivers/devices/index.js';
import { unitOf as catalogUnit } from '../../drivers/devices/helpers.js';
import { DriverError } from '../../drivers/errors.js';
import { UsageError, action } from './errors.js';
import { tr } from './lang.js';
import { parseHostPort, parseIntIn } from './parse.js';
import type { BindingInterface } from '../../drivers/transports/link.js';

interface TargetOpts {
  port?: string;
  host?: string;
  rtuOverTcp?: boolean;
  driver: string;
  unit?: string;
  baud?: string;
  parity?: string;
  timeout: string;
}

export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option('--port <path>', 'serial port (RS-485 adapter), e.g. /dev/ttyUSB0')
    .option('--host <host:port>', 'Modbus TCP device or gateway, e.g. 192.168.1.50:502')
    .option('--rtu-over-tcp', 'the --host is a transparent serial server carrying RTU frames')
    .requiredOption('--driver <name>', `device driver: ${DRIVER_NAMES.join(', ')}`)
    .option('--unit <n>', "Modbus unit id 1..247 (default: the driver's)")
    .option('--baud <rate>', "serial baud rate (default: the driver's)")
    .option('--parity <p>', 'none | even | odd', 'none')
    .option('--timeout <ms>', 'reply timeout in ms', '1000');
}

export async function openTarget(o: TargetOpts, binding?: BindingInterface): Promise<{ bus: Bus; device: DeviceClient }> {
  if (!!o.port === !!o.host) throw new UsageError(tr('usage.portOrHost'));
  const def = getDefinition(o.driver);
  if (def.kind === 'firmata')
    throw new UsageError(tr('usage.firmata'));
  const timeoutMs = parseIntIn(o.timeout, '--timeout', 10, 60_000);
  const unit = o.unit === undefined ? (def.defaults.unit ?? 1) : parseIntIn(o.unit, '--unit', 1, 247);
  const baudRate = o.baud === undefined ? def.defaults.baudRate : parseIntIn(o.baud, '--baud', 300, 921_600);
  if (!['none', 'even', 'odd'].includes(o.parity ?? 'none')) throw new UsageError(tr('usage.parity', { got: o.parity }));
  const parity = (o.parity ?? 'none') as 'none' | 'even' | 'odd';
  let cfg: BusConfig;
  if (o.port) {
    cfg = def.kind === 'frame' ? { id: o.port, type: 'serial', path: o.port, baudRate, parity, timeoutMs } : { id: o.port, type: 'rtu', path: o.port, baudRate, parity, timeoutMs };
  } else {
    if (def.kind === 'frame') throw new UsageError(tr('usage.uart', { driver: def.name }));
    const { host, port } = parseHostPort(o.host!, '--host');
    cfg = { id: o.host!, type: o.rtuOverTcp ? 'rtu-over-tcp' : 'tcp', host, port, timeoutMs, baudRate };
  }
  const bus = new Bus(cfg, { binding });
  await bus.line.openOnce();
  const device = new DeviceClient(bus, def, { id: o.driver, unit, timeoutMs, offlineAfter: 1 });
  return { bus, device };
}

function unitOf(driver: string, metric: string): string {
  const def = getDefinition(driver);
  if (def.kind === 'modbus') return def.registers.find((r) => r.metric === metric)?.unit ?? '';
  if (def.kind === 'firmata') return '';
  return def.metrics.find((m) => m.metric === metric)?.unit || catalogUnit(metric);
}

export function registerDeviceCommands(program: Command): void {
  addTargetOptions(
    program
      .command('read')
      .description('read one device once and print its decoded values')
      .option('--json', 'print one JSON object instead of a table'),
  ).action(
    action(async (o: TargetOpts & { json?: boolean }) => {
      const { bus, device } = await openTarget(o);
      try {
        const t0 = performance.now();
        const values = await device.read();
        const ms = performance.now() - t0;
        if (o.json) {
          process.stdout.write(JSON.stringify({ driver: o.driver, unit: device.unit, ts: new Date().toISOString(), values }) + '\n');
        } else {
          const width = Math.max(...Object.keys(values).map((k) => k.length));
          process.stdout.write(`${o.driver} unit ${device.unit} (${bus.line.address}, ${ms.toFixed(0)} ms)\n`);
          for (const [k, v] of Object.entries(values)) process.stdout.write(`  ${k.padEnd(width)}  ${v} ${unitOf(o.driver, k)}\n`);
        }
      } finally {
        await bus.stop();
      }
    }),
  );

  addTargetOptions(
    program
      .command('write')
      .description('switch one relay channel by hand (and read it back)')
      .requiredOption('--channel <n>', 'relay channel, from 1')
      .option('--on', 'switch on')
      .option('--off', 'switch off'),
  ).action(
    action(async (o: TargetOpts & { channel: string; on?: boolean; off?: boolean }) => {
      if (!!o.on === !!o.off) throw new UsageError(tr('usage.onOff'));
      const { bus, device } = await openTarget(o);
      try {
        const channel = parseIntIn(o.channel, '--channel', 1, 64);
        const echoed = await device.writeChannel(channel, !!o.on);
        const states = await device.readChannels();
        const now = states[channel - 1];
        if (now !== !!o.on || echoed !== !!o.on)
          throw new DriverError('bad_response', `channel ${channel} reads back ${now ? 'on' : 'off'} after switching ${o.on ? 'on' : 'off'}`, { unit: device.unit });
        process.stdout.write(`${o.driver} unit ${device.unit} channel ${channel}: ${now ? 'on' : 'off'} (confirmed by read-back)\n`);
      } finally {
        await bus.stop();
      }
    }),
  );
}
