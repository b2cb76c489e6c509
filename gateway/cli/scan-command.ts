/** `dustgate scan --port PATH [--baud LIST] [--units RANGE]` / `--host H:P`: find Modbus devices on a line. */
import type { Command } from 'commander';
import type { BusConfig } from '../../drivers/bus.js';
import { UsageError, action } from './errors.js';
import { tr } from './lang.js';
import { parseHostPort, parseIntIn } from './parse.js';

export function registerScanCommand(program: Command): void {
  program
    .command('scan')
    .description('find Modbus devices on a line: tries each baud rate and unit id, names the driver of each, prints a devices: block')
    .option('--port <path>', 'serial port (RS-485 adapter)')
    .option('--host <host:port>', 'Modbus TCP gateway (or, with --rtu-over-tcp, a transparent serial server)')
    .option('--rtu-over-tcp', 'the host speaks RTU frames over TCP')
    .option('--baud <list>', 'baud rates to try (serial lines)', '4800,9600')
    .option('--parity <p>', 'none | even | odd', 'none')
    .option('--units <range>', 'unit ids to try, e.g. 1-32 or 1-10,100', '1-32')
    .option('--timeout <ms>', 'wait per request', '150')
    .addHelpText('after', '\nExample:\n  dustgate scan --port /dev/ttyUSB0 --baud 4800,9600 --units 1-16\n')
    .action(
      action(async (o: { port?: string; host?: string; rtuOverTcp?: boolean; baud: string; parity: string; units: string; timeout: string }) => {
        const { scanBus, devicesBlock, parseUnits } = await import('../scan.js');
        if (!o.port === !o.host) throw new UsageError(tr('usage.portOrHost'));
        let units: number[];
        try {
          units = parseUnits(o.units, tr);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        const timeoutMs = parseIntIn(o.timeout, '--timeout', 20, 10_000);
        const bauds = o.baud.split(',').map((b) => parseIntIn(b.trim(), '--baud', 300, 1_000_000));
        if (!['none', 'even', 'odd'].includes(o.parity)) throw new UsageError(tr('usage.parity', { got: o.parity }));
        let bus: BusConfig;
        if (o.host) {
          const { host, port } = parseHostPort(o.host, '--host');
          bus = o.rtuOverTcp ? { id: 'scan', type: 'rtu-over-tcp', host, port, timeoutMs } : { id: 'scan', type: 'tcp', host, port, timeoutMs };
        } else bus = { id: 'scan', type: 'rtu', path: o.port!, parity: o.parity as 'none', timeoutMs };
        const tries = (bus.type === 'tcp' ? 1 : bauds.length) * units.length;
        const { SingleBar, Presets } = await import('cli-progress');
        const bar = new SingleBar({ format: tr('scan.bar'), stream: process.stderr, etaBuffer: 20 }, Presets.shades_classic);
        process.stderr.write(`${tr('scan.scanning', { target: o.host ?? o.port, tries, s: Math.ceil((tries * timeoutMs) / 1000) })}\n`);
        bar.start(tries, 0);
        const found = await scanBus({ bus, baudRates: bauds, units, timeoutMs, onProgress: (d) => bar.update(d), say: tr });
        bar.stop();
        if (!found.length) {
          process.stderr.write(`${tr('scan.nothing')}\n`);
          process.exit(1);
        }
        process.stdout.write(`${found.length === 1 ? tr('scan.found1') : tr('scan.found', { n: found.length })}\n`);
        for (const f of found) process.stdout.write(`  unit ${String(f.unit).padEnd(4)}${f.baudRate ? `${f.baudRate} baud  ` : ''}${(f.candidates ? f.candidates.join(' | ') + ' ?' : f.driver).padEnd(22)} ${f.detail}\n`);
        process.stdout.write(`\n${tr('scan.paste')}\n${devicesBlock(found, bus, tr)}`);
      }),
    );
}
