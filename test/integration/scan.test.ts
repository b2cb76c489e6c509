/** `dustgate scan` over a real pty finds a mixed line of five simulated devices and names each driver. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { ROOT, tempDir } from '../helpers/gateway-rig.js';
import { requireTool, runCommand, uniquePath } from '../helpers/system.js';

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
