/**
 * (f) Firmata relay switching: an Arduino's relay pin switched and confirmed (pin write, then a
 * pin-state query) through dustgate's firmata-io device (johnny-five Board and Relay) ÷ a bare
 * firmata.js loop doing the same write and query on the same board. The board is the simulator's
 * virtual Arduino speaking StandardFirmata on a real pty, in its own process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getDefinition } from '../drivers/devices/index.js';
import type { FirmataDeviceDefinition } from '../drivers/devices/types.js';
import { FirmataBus, FirmataDevice, type FirmataIo } from '../drivers/firmata.js';
import { freePort, medianOfAlternating, quick, type Result } from './common.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export async function firmataSwitching(): Promise<Result> {
  const acm = path.join(mkdtempSync(path.join(os.tmpdir(), 'dustgate-bench-acm-')), 'ttyACM0');
  const sim = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(HERE, '../gateway/cli/main.ts'), 'sim', '--scenario', path.join(HERE, '../seeds/scenarios/small-site-arduino.yaml'), '--pty', `io=${acm}`, '--control', `127.0.0.1:${await freePort()}`],
    { stdio: 'ignore' },
  );
  try {
    for (let i = 0; i < 200 && !existsSync(acm); i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(acm)) throw new Error('the simulator did not serve the board (is socat installed? run `bash scripts/install-system-deps.sh`)');
    const n = quick ? 1000 : 3000;

    const bare = async () => {
      const { default: Firmata } = (await import('firmata')) as unknown as { default: new (p: string, o: object, cb: (e?: Error) => void) => FirmataIo };
      const io = await new Promise<FirmataIo>((resolve, reject) => {
        const b: FirmataIo = new Firmata(acm, {}, (e?: Error) => (e ? reject(e) : resolve(b)));
      });
      io.pinMode(7, io.MODES.OUTPUT!);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        io.digitalWrite(7, i & 1);
        await new Promise<void>((r) => io.queryPinState(7, () => r()));
      }
      const rate = n / ((performance.now() - t0) / 1000);
      await new Promise<void>((r) => io.transport?.close?.(() => r()) ?? r());
      return rate;
    };
    const ours = async () => {
      const def = getDefinition('firmata-io', { pins: [{ pin: 7, mode: 'relay' }] }) as FirmataDeviceDefinition;
      const bus = new FirmataBus({ id: 'io', path: acm }, { readyTimeoutMs: 8000 });
      const dev = new FirmataDevice(bus, def, { id: 'board', timeoutMs: 1000 });
      await bus.start();
      if (!bus.isOpen) throw new Error(`board did not open: ${bus.lastOpenError?.message}`);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await dev.writeChannel(1, (i & 1) === 1);
      const rate = n / ((performance.now() - t0) / 1000);
      await bus.stop();
      return rate;
    };
    const mid = await medianOfAlternating(bare, ours, quick ? 5 : 9);
    const ratio = mid.ratio;
    return {
      name: 'Firmata relay switch + confirm (pty, StandardFirmata)',
      measured: `${mid.mine.toFixed(0)} switches/s`,
      baseline: `${mid.base.toFixed(0)} switches/s bare firmata.js`,
      ratio,
      target: '≥ 0.8',
      pass: ratio >= 0.8,
    };
  } finally {
    sim.kill('SIGTERM');
  }
}
