/**
 * `dustgate scan` over a real pty finds a mixed line of five simulated devices and names each driver;
 * against devices that answer every address (an independent pymodbus server, and the simulator's
 * `unmapped: zeros | own-functions`) it still names each, lists candidates it cannot tell apart
 * (commented out in the pasted block) and says `unknown`, with what answered, for a unit no driver explains.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { ROOT, tempDir } from '../helpers/gateway-rig.js';
import { requireTool, runCommand, startPymodbus, uniquePath } from '../helpers/system.js';

const LINE = [
  { id: 'head', driver: 'cwt-weather-station', unit: 1, values: { temperature: 12.5, pm10: 80, windSpeed: 2.2, humidity: 55, noise: 58, pressure: 100.9, pm25: 40 } },
  { id: 'relays', driver: 'waveshare-relay-8ch', unit: 2 },
  { id: 'dio', driver: 'waveshare-di-8ch', unit: 3 },
  { id: 'th', driver: 'xy-md02', unit: 7, values: { temperature: 21.3, humidity: 48.2 } },
  { id: 'wind', driver: 'renke-wind-speed', unit: 12, values: { windSpeed: 3.1 } },
];
let sim: Simulator;
let pty: string;
const dustgate = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT, timeoutMs: 60_000 });

beforeAll(async () => {
  requireTool('socat', ['-V']);
  sim = new Simulator(parseScenario({ devices: LINE.map((d) => ({ ...d, baudRate: 9600 })) }));
  pty = uniquePath('scan');
  await sim.servePty(pty);
});
afterAll(async () => {
  await sim?.stop();
});

describe('dustgate scan', () => {
  it('finds all five devices on a pty, names the right driver for each, and prints a block that validates', async () => {
    const r = await dustgate(['scan', '--port', pty, '--baud', '9600', '--units', '1-16', '--timeout', '120']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/scanning .*: 16 tries/);
    for (const d of LINE) expect(r.stdout).toMatch(new RegExp(`^  unit ${d.unit}\\s+9600 baud\\s+${d.driver}\\s`, 'm'));
    expect(r.stdout).toMatch(/found 5 devices/);
    const block = r.stdout.slice(r.stdout.indexOf('# paste into the site config:'));
    const file = path.join(tempDir('scan'), 'site.yaml');
    writeFileSync(file, `gateway: { id: scanned-site }\n${block}`);
    const v = await dustgate(['config', 'validate', file]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/ok \(gateway scanned-site, preset henan-2017, 1 buses, 5 devices/);
  });

  it('says what to check when nothing answers, and refuses a bad unit range in one line', async () => {
    const none = await dustgate(['scan', '--port', pty, '--baud', '9600', '--units', '100-103', '--timeout', '60']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/nothing answered: check wiring/);
    const bad = await dustgate(['scan', '--port', pty, '--units', '0-300']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/--units: expected ids within 1\.\.247/);
  });
});

/** The rows of scan's table, by unit: the driver column (or "a | b ?") and the rest. */
function rows(stdout: string): Map<number, { driver: string; detail: string }> {
  const out = new Map<number, { driver: string; detail: string }>();
  for (const m of stdout.matchAll(/^ {2}unit (\d+)\s+(?:\d+ baud\s+)?(\S+(?: \| \S+)*(?: \?)?)\s+(.*)$/gm)) out.set(Number(m[1]), { driver: m[2]!, detail: m[3]! });
  return out;
}

async function validates(stdout: string, name: string): Promise<string> {
  const block = stdout.slice(stdout.indexOf('# paste into the site config:'));
  const file = path.join(tempDir(name), 'site.yaml');
  writeFileSync(file, `gateway: { id: scanned-site }\n${block}`);
  const v = await dustgate(['config', 'validate', file]);
  expect(v.code, v.stderr).toBe(0);
  return block;
}

describe('dustgate scan against devices that answer every address', () => {
  it('pymodbus peer (zeros outside each map): names the weather station, XY-MD02, input module and dust transmitter; the all-off relay module is a listed candidate; unknown units say what answered', async () => {
    const py = await startPymodbus(path.join(__dirname, '../peers/pymodbus_any_address.py'));
    try {
      const r = await dustgate(['scan', '--host', `127.0.0.1:${py.port}`, '--units', '1-8', '--timeout', '500']);
      expect(r.code, r.stderr).toBe(0);
      const found = rows(r.stdout);
      expect([...found.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7]);
      expect(found.get(1)!.driver).toBe('cwt-weather-station');
      expect(found.get(1)!.detail).toMatch(/windSpeed=3\.41 .*wind level agrees with wind speed/);
      expect(found.get(2)!.driver).toBe('xy-md02');
      expect(found.get(2)!.detail).toMatch(/temperature=27\.3 humidity=62\.6/);
      // a relay module with every relay off reads like an input module with every input off; both answer the Waveshare id register
      expect(found.get(3)!.driver).toBe('waveshare-relay-8ch | waveshare-di-8ch ?');
      expect(found.get(4)!.driver).toBe('waveshare-di-8ch');
      expect(found.get(4)!.detail).toMatch(/id register 0x4000 holds the unit id/);
      expect(found.get(5)!.driver).toBe('dust-transmitter');
      expect(found.get(5)!.detail).toMatch(/pm25=42 pm10=96 tsp=150 .*PM2\.5 ≤ PM10 ≤ TSP/);
      expect(found.get(6)!.driver).toBe('unknown');
      expect(found.get(6)!.detail).toMatch(/FC01–FC04: answers any address, zeros where read/);
      expect(found.get(7)!.driver).toBe('unknown');
      const block = await validates(r.stdout, 'scan-any');
      expect(block).toMatch(/^ {2}# unit 3: one of waveshare-relay-8ch, waveshare-di-8ch \(reads alone cannot tell them apart\)/m);
      expect(block).toMatch(/^ {2}# - \{ id: relays3, .*unit: 3, driver: waveshare-relay-8ch/m);
      expect(block).not.toMatch(/^ {2}- .*unit: 3,/m);
      expect(block).toMatch(/^ {2}# unit 6: unknown device \(FC01–FC04: answers any address, zeros where read\)/m);
      for (const [unit, driver] of [[1, 'cwt-weather-station'], [2, 'xy-md02'], [4, 'waveshare-di-8ch'], [5, 'dust-transmitter']] as const) {
        expect(block).toMatch(new RegExp(`^  - \\{ id: \\w+, bus: line1, unit: ${unit}, driver: ${driver},`, 'm'));
      }
    } finally {
      py.stop();
    }
  });

  it('simulator: devices answering any address with zeros, and only their own functions, are named; so is a strict one beside them', async () => {
    const line = new Simulator(
      parseScenario({
        devices: [
          { id: 'head', driver: 'cwt-weather-station', unit: 1, unmapped: 'zeros', values: { temperature: 3.5, pm10: 120, pm25: 60, windSpeed: 5.0, humidity: 80, noise: 61, pressure: 101.2, windDirection: 90 } },
          { id: 'dust', driver: 'dust-transmitter', unit: 2, unmapped: 'own-functions', values: { pm25: 30, pm10: 70, tsp: 140 } },
          { id: 'vane', driver: 'renke-wind-direction', unit: 3, unmapped: 'zeros', values: { windDirection: 200 } },
          { id: 'th', driver: 'xy-md02', unit: 4, unmapped: 'own-functions', values: { temperature: -2.5, humidity: 91 } },
          { id: 'relays', driver: 'waveshare-relay-8ch', unit: 5, unmapped: 'own-functions' },
          { id: 'wind', driver: 'renke-wind-speed', unit: 6, values: { windSpeed: 4.2 } },
        ],
      }),
    );
    const tcp = await line.serveTcp('127.0.0.1', 0);
    try {
      const r = await dustgate(['scan', '--host', `127.0.0.1:${tcp.port}`, '--units', '1-6', '--timeout', '300']);
      expect(r.code, r.stderr).toBe(0);
      const found = rows(r.stdout);
      expect(Object.fromEntries([...found].map(([u, f]) => [u, f.driver]))).toEqual({
        1: 'cwt-weather-station',
        2: 'dust-transmitter',
        3: 'renke-wind-direction',
        4: 'xy-md02',
        5: 'waveshare-relay-8ch',
        6: 'renke-wind-speed',
      });
      await validates(r.stdout, 'scan-sim-any');
    } finally {
      await line.stop();
    }
  });
});
