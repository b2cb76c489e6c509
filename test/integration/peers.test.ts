/**
 * Independent peers: mbpoll (a Modbus master nobody here wrote) reads the simulator's registers at
 * the SPEC addresses; dustgate's drivers read a pymodbus server that holds the SPEC maps.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bus } from '../../drivers/bus.js';
import { DeviceClient } from '../../drivers/device.js';
import { getDefinition } from '../../drivers/devices/index.js';
import { parseScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { freePort, requireTool, startPymodbus, runCommand, uniquePath, waitFor } from '../helpers/system.js';

/** Run mbpoll once (asynchronously: the simulator answers from this process) and return {address: value}, 16-bit values unsigned. */
async function mbpoll(args: string[], device: string): Promise<Record<number, number>> {
  const r = await runCommand('mbpoll', [...args, '-0', '-1', device], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`mbpoll ${args.join(' ')} ${device} failed (${r.code}): ${r.stdout}${r.stderr}`);
  const out: Record<number, number> = {};
  for (const m of r.stdout.matchAll(/^\[(\d+)\]:\s+(-?\d+)/gm)) out[Number(m[1])] = Number(m[2]) & 0xffff;
  return out;
}

const SCENARIO = parseScenario({
  devices: [
    { id: 'head', driver: 'cwt-weather-station', unit: 1, baudRate: 9600, values: { windSpeed: 3.41, windDirection: 271, humidity: 45.5, temperature: -3.5, noise: 62.3, pm25: 35, pm10: 180, pressure: 100.8 } },
    { id: 'th', driver: 'xy-md02', unit: 2, baudRate: 9600, values: { temperature: 27.3, humidity: 62.6 } },
    { id: 'relays', driver: 'waveshare-relay-8ch', unit: 3, baudRate: 9600, values: { ch2: 1 } },
    { id: 'dio', driver: 'waveshare-di-8ch', unit: 4, baudRate: 9600, values: { ch1: 1, ch3: 1, ch8: 1 } },
  ],
});

/** Raw registers per SPEC §4 for the values above, worked out by hand. */
const CWT_RAW = { 500: 341, 501: 3, 503: 271, 504: 455, 505: 0x10000 - 35, 506: 623, 507: 35, 508: 180, 509: 1008 };

describe('mbpoll reads the simulator', () => {
  let sim: Simulator;
  let port: number;
  let pty: string;
  beforeAll(async () => {
    requireTool('mbpoll', ['-V']);
    requireTool('socat', ['-V']);
    sim = new Simulator(SCENARIO);
    port = await freePort();
    await sim.serveTcp('127.0.0.1', port);
    pty = uniquePath('mbpoll');
    await sim.servePty(pty);
  });
  afterAll(async () => sim?.stop());

  const cases = (target: () => string[], device: () => string) => {
    it('cwt-weather-station holding registers 0x01F4..0x01FD', async () => {
      expect(await mbpoll([...target(), '-a', '1', '-t', '4', '-r', '500', '-c', '10'], device())).toMatchObject(CWT_RAW);
    });
    it('xy-md02 input registers 0x0001..0x0002', async () => {
      expect(await mbpoll([...target(), '-a', '2', '-t', '3', '-r', '1', '-c', '2'], device())).toEqual({ 1: 273, 2: 626 });
    });
    it('relay coils and DI discrete inputs', async () => {
      expect(await mbpoll([...target(), '-a', '3', '-t', '0', '-r', '0', '-c', '8'], device())).toEqual({ 0: 0, 1: 1, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0 });
      expect(await mbpoll([...target(), '-a', '4', '-t', '1', '-r', '0', '-c', '8'], device())).toEqual({ 0: 1, 1: 0, 2: 1, 3: 0, 4: 0, 5: 0, 6: 0, 7: 1 });
    });
  };
  describe('over Modbus TCP', () => cases(() => ['-m', 'tcp', '-p', String(port)], () => '127.0.0.1'));
  describe('over RTU on a pty', () => cases(() => ['-m', 'rtu', '-b', '9600', '-P', 'none', '-o', '2'], () => pty));
});

describe("dustgate's drivers against a pymodbus server with the SPEC maps", () => {
  let py: { port: number; stop(): void };
  let bus: Bus;
  let port: number;
  beforeAll(async () => {
    requireTool('mbpoll', ['-V']);
    py = await startPymodbus(path.join(__dirname, '../peers/pymodbus_server.py'));
    port = py.port;
    bus = new Bus({ id: 'py', type: 'tcp', host: '127.0.0.1', port, timeoutMs: 2000 });
    await bus.start();
  });
  afterAll(async () => {
    await bus?.stop();
    py?.stop();
  });

  const client = (driver: string, unit: number) => new DeviceClient(bus, getDefinition(driver), { id: driver, unit, timeoutMs: 2000 });

  it('reads cwt-weather-station', async () => {
    expect(await client('cwt-weather-station', 1).read()).toEqual({
      windSpeed: 3.41, windLevel: 3, windDirection: 271, humidity: 45.5, temperature: -3.5, noise: 62.3, pm25: 35, pm10: 180, pressure: 100.8,
    });
  });
  it('reads xy-md02', async () => {
    expect(await client('xy-md02', 2).read()).toEqual({ temperature: 27.3, humidity: 62.6 });
  });
  it('reads the relay and DI modules', async () => {
    expect(await client('waveshare-relay-8ch', 3).read()).toEqual({ ch1: 0, ch2: 0, ch3: 0, ch4: 0, ch5: 0, ch6: 0, ch7: 0, ch8: 0 });
    expect(await client('waveshare-di-8ch', 4).read()).toEqual({ ch1: 1, ch2: 0, ch3: 1, ch4: 0, ch5: 0, ch6: 0, ch7: 0, ch8: 1 });
  });
  it('switches a pymodbus coil, confirmed by mbpoll', async () => {
    const relays = client('waveshare-relay-8ch', 3);
    expect(await relays.writeChannel(6, true)).toBe(true);
    expect(await mbpoll(['-m', 'tcp', '-p', String(port), '-a', '3', '-t', '0', '-r', '0', '-c', '8'], '127.0.0.1')).toEqual({ 0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 1, 6: 0, 7: 0 });
    expect(await relays.writeChannel(6, false)).toBe(false);
    expect((await relays.read()).ch6).toBe(0);
  });
});
