/** The CLI as a user runs it: one-off reads and writes, and one-line errors instead of stack traces. */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { freePort, requireTool, runCommand, uniquePath } from '../helpers/system.js';

const ROOT = path.resolve(__dirname, '../..');

function dustgate(args: string[]) {
  return runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT });
}

function expectOneLineError(r: { code: number; stderr: string }, code: RegExp) {
  expect(r.code).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^dustgate: /);
  expect(lines[0]).toMatch(code);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('dustgate read / write', () => {
  let sim: Simulator;
  let port: number;
  let pty: string;
  beforeAll(async () => {
    requireTool('socat', ['-V']);
    sim = new Simulator(
      parseScenario({
        devices: [
          { id: 'head', driver: 'cwt-weather-station', unit: 1, baudRate: 9600, values: { temperature: 3.9, pm10: 180, windSpeed: 3.4 } },
          { id: 'relays', driver: 'waveshare-relay-8ch', unit: 2, baudRate: 9600 },
        ],
      }),
    );
    port = await freePort();
    await sim.serveTcp('127.0.0.1', port);
    pty = uniquePath('cli');
    await sim.servePty(pty);
  });
  afterAll(async () => sim?.stop());

  it('reads a device over TCP and prints decoded values', async () => {
    const r = await dustgate(['read', '--host', `127.0.0.1:${port}`, '--driver', 'cwt-weather-station', '--unit', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.values).toMatchObject({ temperature: 3.9, pm10: 180, windSpeed: 3.4, windLevel: 3 });
  });

  it('reads over a pty and prints a table with units', async () => {
    const r = await dustgate(['read', '--port', pty, '--baud', '9600', '--driver', 'cwt-weather-station', '--unit', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/temperature\s+3\.9 °C/);
    expect(r.stdout).toMatch(/pm10\s+180 µg\/m³/);
  });

  it('switches a relay channel and confirms it by read-back', async () => {
    const r = await dustgate(['write', '--port', pty, '--baud', '9600', '--driver', 'waveshare-relay-8ch', '--unit', '2', '--channel', '4', '--on']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/channel 4: on/);
    expect(sim.device('relays')!.overrides.ch4).toBe(1);
  });

  it('a wrong unit id on a serial line is a one-line timeout error', async () => {
    const r = await dustgate(['read', '--port', pty, '--baud', '9600', '--driver', 'cwt-weather-station', '--unit', '9', '--timeout', '300']);
    expectOneLineError(r, /timeout: no reply from unit 9.*--unit/);
  });

  it('a wrong unit id behind a TCP gateway is a one-line error', async () => {
    const r = await dustgate(['read', '--host', `127.0.0.1:${port}`, '--driver', 'xy-md02', '--unit', '7']);
    expectOneLineError(r, /exception.*unit id/);
  });

  it('a device that never answers is a one-line error', async () => {
    sim.setFaults('head', ['timeout']);
    const r = await dustgate(['read', '--host', `127.0.0.1:${port}`, '--driver', 'cwt-weather-station', '--unit', '1', '--timeout', '300']);
    sim.setFaults('head', []);
    expectOneLineError(r, /^dustgate: timeout/);
  });

  it('a missing port, a closed host and bad arguments are one-line errors', async () => {
    expectOneLineError(await dustgate(['read', '--port', '/dev/ttyNOPE9', '--driver', 'xy-md02']), /open_failed.*ttyNOPE9.*dialout/);
    const closed = await freePort();
    expectOneLineError(await dustgate(['read', '--host', `127.0.0.1:${closed}`, '--driver', 'xy-md02']), /open_failed.*ECONNREFUSED/);
    expectOneLineError(await dustgate(['read', '--host', 'nohostport', '--driver', 'xy-md02']), /--host: expected HOST:PORT/);
    expectOneLineError(await dustgate(['read', '--host', `127.0.0.1:${port}`, '--driver', 'nope']), /unknown driver "nope"/);
    expectOneLineError(await dustgate(['write', '--host', `127.0.0.1:${port}`, '--driver', 'waveshare-relay-8ch', '--unit', '2', '--channel', '1']), /--on or --off/);
  });

  it('every command has --help', async () => {
    for (const cmd of [[], ['read'], ['write'], ['sim'], ['demo']]) {
      const r = await dustgate([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: dustgate/);
    }
  });
});
