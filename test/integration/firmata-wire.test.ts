/**
 * The production path to an Arduino: the simulator's virtual board speaks StandardFirmata on a real
 * pty (socat), and the gateway opens it exactly as it opens a real board — johnny-five, firmata.js
 * and the native serialport binding, no IO override. The far end (the board's firmware) is the only
 * part played by us.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BOARD_LED, type InProcessRig, IO_LAYOUT, JUNE_10AM, ROOT, sleep, startInProcess, tempDir } from '../helpers/gateway-rig.js';
import { freePort, requireTool, runCommand, waitFor, ntpPath } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

// the doctor's clock check asks timedatectl: here one that says NTP has set the clock
const dustgate = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT, timeoutMs: 30_000, env: { ...process.env, PATH: ntpPath(true) } });

describe('firmata-io over a real serial port (StandardFirmata on a pty)', () => {
  it('dustgate sim serves the scenario\'s Arduino on a pty; dustgate doctor finds it', async () => {
    requireTool('socat', ['-V']);
    const dir = tempDir('sim-board');
    const acm = path.join(dir, 'ttyACM0');
    const sim = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'sim', '--scenario', 'seeds/scenarios/small-site-arduino.yaml', '--pty', `io=${acm}`, '--control', `127.0.0.1:${await freePort()}`],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    sim.stdout.on('data', (d) => (log += String(d)));
    sim.stderr.on('data', (d) => (log += String(d)));
    try {
      await waitFor(() => existsSync(acm) && log.includes('simulator running'), 20_000, 100);
      expect(log).toContain(`"firmata:io":"${acm}"`);
      const file = path.join(dir, 'site.json');
      writeFileSync(
        file,
        JSON.stringify({
          gateway: { id: 'sim-board-0001' },
          buses: [{ id: 'io', type: 'firmata', path: acm }],
          devices: [{ id: 'board', bus: 'io', driver: 'firmata-io', pins: [{ pin: 7, mode: 'relay' }, { pin: 8, mode: 'relay', type: 'NC' }, { pin: 2, mode: 'input', pullup: true }] }],
          storage: { path: path.join(dir, 'doctor.db') },
          mqtt: { enabled: false },
        }),
      );
      const out = await dustgate(['doctor', '--config', file]);
      expect(out.stdout, log).toMatch(/^ok\s+device board\s+firmata-io on .*ttyACM0: StandardFirmata ready, 3 pins: ch1=0 ch2=0 ch3=0/m);
      expect(out.code).toBe(0);
    } finally {
      sim.kill('SIGTERM');
      await new Promise((r) => sim.once('exit', r));
    }
  });

  it('switches relays, reports a press, survives unplugging and restores the relays', async () => {
    rig = await startInProcess('dust-event', { io: 'firmata', boardOnPty: true, factor: 1, startMs: JUNE_10AM });
    const r = rig;
    const board = r.sim.board('board')!;
    // an Uno-like handshake over the wire: version, firmware, capabilities, analog mapping
    await waitFor(() => r.gw.devices.get('board')!.status === 'online', 15_000);
    expect(r.gw.outputs.actual).toEqual({ sprinkler: 'off', sweepStopSignal: 'off', cameraTrigger: 'off' });
    await waitFor(() => board.level(BOARD_LED) === 1, 5000); // healthy: steady light

    // a dust alarm switches the sprinkler pin HIGH; the pin-state query confirms it
    r.sim.setValues('head', { pm10: 400 });
    await waitFor(() => r.relays.overrides.ch1 === 1, 10_000);
    await waitFor(() => r.gw.outputs.actual.sprinkler === 'on', 5000);
    expect(board.level(7)).toBe(1);

    // a press on the gate contact, reported by the board as a digital port message
    const t = r.now();
    await board.press(IO_LAYOUT.firmata.gateCamera, 150, 2);
    await waitFor(() => r.sub.events('video_trigger').length === 1, 5000);
    expect(Math.abs(Date.parse(r.sub.events('video_trigger')[0]!.edgeAt as string) - t)).toBeLessThan(50);

    // pull the cable: the pty vanishes, the serial port reports it, the device is offline at once
    await r.sim.unplug('io');
    await waitFor(() => r.sub.events('device_status').some((e) => e.device === 'board' && e.status === 'offline'), 5000);
    expect(r.relays.overrides.ch1).toBe(0);
    await sleep(500);
    // back: a new board on the same path, handshake again, the sprinkler the alarm wants is on again
    await r.sim.replug('io');
    await waitFor(() => r.sub.events('device_status').filter((e) => e.device === 'board' && e.status === 'online').length >= 2, 20_000);
    await waitFor(() => r.relays.overrides.ch1 === 1, 5000);
    expect(board.stats.connects).toBe(2);
  });

  it('a board that is not there at start: the gateway runs without it, then takes it up when it is plugged in', async () => {
    rig = await startInProcess('dust-event', { io: 'firmata', boardOnPty: true, factor: 1, startMs: JUNE_10AM, beforeStart: (sim) => sim.unplug('io') });
    const r = rig;
    await waitFor(() => r.sub.events('device_status').some((e) => e.device === 'board' && e.status === 'offline'), 5000);
    expect(r.gw.devices.get('head')!.status).toBe('online');
    expect(r.gw.outputs.actual.sprinkler).toBe('unknown'); // nothing to confirm it with
    r.sim.setValues('head', { pm10: 400 });
    await waitFor(() => r.sub.events('dust_alarm').length > 0, 10_000);
    await r.sim.replug('io');
    await waitFor(() => r.gw.devices.get('board')!.status === 'online', 20_000);
    // what the rules decided while it was away is put on it
    await waitFor(() => r.relays.overrides.ch1 === 1, 5000);
    await waitFor(() => r.gw.outputs.actual.sprinkler === 'on', 5000);
  });

  it('dustgate doctor finds StandardFirmata on the board and reads its pins', async () => {
    rig = await startInProcess('dust-event', { io: 'firmata', boardOnPty: true, factor: 1, startMs: JUNE_10AM });
    const r = rig;
    await waitFor(() => r.gw.devices.get('board')!.status === 'online', 15_000);
    // the doctor needs the port to itself, as on a real box: stop the gateway first
    await r.gw.stop();
    const dir = path.dirname(r.boardPath);
    const file = path.join(dir, 'site.json');
    writeFileSync(
      file,
      JSON.stringify({
        gateway: { id: 'wire-test-0001' },
        buses: [{ id: 'io', type: 'firmata', path: r.boardPath }],
        devices: [{ id: 'board', bus: 'io', driver: 'firmata-io', pins: [{ pin: 7, mode: 'relay' }, { pin: 2, mode: 'input', pullup: true }], statusLed: 13 }],
        storage: { path: path.join(dir, 'doctor.db') },
        mqtt: { enabled: false },
      }),
    );
    const out = await runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'doctor', '--config', file], { cwd: ROOT, timeoutMs: 30_000, env: { ...process.env, PATH: ntpPath(true) } });
    expect(out.stdout).toMatch(/^ok\s+device board\s+firmata-io on .*ttyACM0: StandardFirmata ready, 2 pins: ch1=0 ch2=0/m);
    expect(out.code, out.stdout + out.stderr).toBe(0);
  });
});
