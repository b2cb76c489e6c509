/**
 * Every built-in driver reads back exactly what the simulator serves (the scenario's values),
 * over the serialport mock binding, over a real pty (native binding), and over TCP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScenarioInput } from '../../simulator/scenario.js';
import { startRig, type Rig, type TransportKind } from '../helpers/rig.js';
import { requireTool } from '../helpers/system.js';
import { DeviceClient } from '../../drivers/device.js';
import { genericModbus, type GenericRegisterConfig } from '../../drivers/devices/generic-modbus.js';

/** What each device is set to; every value is exactly representable by its register's scale. */
const EXPECTED: Record<string, Record<string, number>> = {
  head: { windSpeed: 3.41, windLevel: 3, windDirection: 271, humidity: 45.5, temperature: -3.5, noise: 62.3, pm25: 35, pm10: 180, pressure: 100.8 },
  wind: { windSpeed: 8.6 },
  vane: { windSector: 5, windDirection: 225 },
  th: { temperature: 27.3, humidity: 62.6 },
  noise: { noise: 71.2 },
  dust: { pm25: 42, pm10: 96, tsp: 230 },
  relays: { ch1: 0, ch2: 1, ch3: 0, ch4: 0, ch5: 1, ch6: 0, ch7: 0, ch8: 1 },
  dio: { ch1: 1, ch2: 0, ch3: 0, ch4: 1, ch5: 0, ch6: 0, ch7: 0, ch8: 0 },
  gen: { energy: 123456, offset: -70000, flow: 1.5, level: 12.34 },
  pms: { pm1: 11, pm25: 23, pm10: 37 },
  sds: { pm25: 123.6, pm10: 261.8 },
};

const DRIVERS: Record<string, string> = {
  head: 'cwt-weather-station',
  wind: 'renke-wind-speed',
  vane: 'renke-wind-direction',
  th: 'xy-md02',
  noise: 'noise-transmitter',
  dust: 'dust-transmitter',
  relays: 'waveshare-relay-8ch',
  dio: 'waveshare-di-8ch',
  gen: 'generic-modbus',
};

const GENERIC_MAP = [
  { metric: 'energy', address: 0x10, type: 'u32' },
  { metric: 'offset', address: 0x12, type: 's32', wordOrder: 'le' },
  { metric: 'flow', address: 0x20, type: 'f32', fn: 4 },
  { metric: 'level', address: 0x30, type: 'u16', scale: 0.01 },
];

const scenario: ScenarioInput = {
  devices: [
    ...Object.entries(DRIVERS).map(([id, driver], i) => ({
      id,
      driver,
      unit: i + 1,
      baudRate: 19200,
      values: EXPECTED[id],
      ...(driver === 'generic-modbus' ? { registers: GENERIC_MAP } : {}),
    })),
    { id: 'pms', driver: 'pms5003', line: 'uart-pms', values: EXPECTED.pms },
    { id: 'sds', driver: 'sds011', line: 'uart-sds', values: EXPECTED.sds },
  ],
};

for (const kind of ['mock', 'pty', 'tcp', 'rtu-over-tcp'] as TransportKind[]) {
  describe(`drivers over ${kind}`, () => {
    let rig: Rig;
    beforeAll(async () => {
      if (kind === 'pty') requireTool('socat', ['-V']);
      rig = await startRig(scenario, kind);
    });
    afterAll(async () => rig?.stop());

    for (const id of Object.keys(DRIVERS)) {
      it(`${DRIVERS[id]} reads back the simulated values`, async () => {
        const c = id === 'gen' ? genericClient(rig) : rig.client(id);
        expect(await c.read()).toEqual(EXPECTED[id]);
        expect(c.counters.ok).toBeGreaterThan(0);
        expect(c.status).toBe('online');
      });
    }

    it('switches a relay and the simulator keeps the coil', async () => {
      const c = rig.client('relays');
      expect(await c.writeChannel(3, true)).toBe(true);
      expect(rig.sim.device('relays')!.value('ch3', 0, Date.now())).toBe(1);
      expect((await c.readChannels())[2]).toBe(true);
      expect(await c.writeChannel(3, false)).toBe(false);
      expect((await c.read()).ch3).toBe(0);
    });
  });
}

/** generic-modbus takes its map from the site config: build the client the way the gateway will. */
function genericClient(rig: Rig): DeviceClient {
  const def = genericModbus({ registers: GENERIC_MAP as GenericRegisterConfig[] });
  return new DeviceClient(rig.bus, def, { id: 'gen', unit: rig.sim.device('gen')!.unit });
}

for (const kind of ['mock', 'pty'] as TransportKind[]) {
  describe(`UART sensors over ${kind}`, () => {
    for (const [id, line] of [
      ['pms', 'uart-pms'],
      ['sds', 'uart-sds'],
    ] as const) {
      it(`${id} reads back the simulated values`, async () => {
        if (kind === 'pty') requireTool('socat', ['-V']);
        const rig = await startRig(scenario, kind, { line, timeoutMs: 500 });
        try {
          const c = rig.client(id);
          expect(await c.read()).toEqual(EXPECTED[id]);
          expect(await c.read()).toEqual(EXPECTED[id]);
        } finally {
          await rig.stop();
        }
      });
    }
  });
}
