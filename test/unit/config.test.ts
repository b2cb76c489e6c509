/** Site configs: the examples validate, every mistake is named by its path, the JSON Schema is usable, the CLI says it in one line each. */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, configJsonSchema, loadConfigFile, loadPreset, redact, resolveConfig } from '../../gateway/config/load.js';
import { ROOT, tempDir } from '../helpers/gateway-rig.js';
import { runCommand } from '../helpers/system.js';

const dustgate = (args: string[]) => runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT });

const base = () => ({
  gateway: { id: 'zz-site-0001', site: { name: 'x', kind: 'construction', city: 'zhengzhou' } },
  buses: [{ id: 'line1', type: 'rtu', path: '/dev/ttyUSB0', baudRate: 4800 }] as Record<string, unknown>[],
  devices: [
    { id: 'head', bus: 'line1', unit: 1, driver: 'cwt-weather-station' },
    { id: 'relays', bus: 'line1', unit: 2, driver: 'waveshare-relay-8ch' },
    { id: 'dio', bus: 'line1', unit: 3, driver: 'waveshare-di-8ch' },
  ] as Record<string, unknown>[],
  outputs: { sprinkler: { device: 'relays', channel: 1, kind: 'road' }, cameraTrigger: { device: 'relays', channel: 3, pulseMs: 500 } } as Record<string, unknown>,
  inputs: { gateCamera: { device: 'dio', channel: 1, kind: 'video-trigger' } } as Record<string, unknown>,
});

function issues(cfg: unknown): { path: string; message: string }[] {
  try {
    resolveConfig(cfg);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  return [];
}

describe('config', () => {
  it('every example site config validates', () => {
    const dir = path.join(ROOT, 'seeds/sites');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(['demo.yaml', 'construction-zhengzhou.yaml', 'road-segment.yaml']));
    for (const f of files) expect(loadConfigFile(path.join(dir, f)).config.gateway.id).toBeTruthy();
  });

  it('the preset carries every rule default of SPEC §6 and the city targets of tables 1–3', () => {
    const p = loadPreset('henan-2017');
    const r = resolveConfig(base()).config.rules;
    expect(r.sprinkling).toEqual({ minTempC: 4, greenbeltMinTempC: 5, tempMaxAgeS: 300 });
    expect(r.sweeping).toEqual({ stopAtBeaufort: 3, windAverageS: 120, resumeAfterS: 600 });
    expect(r.dustAlarm).toEqual({
      averageS: 300,
      pm10: { warn: 150, severe: 200, clear: 120 },
      pm25: { warn: 75, severe: 115, clear: 60 },
      tsp: { warn: 800, severe: 1000, clear: 600 },
      onWarn: ['spray', 'cameraTrigger'],
      sprayS: 600,
      sprayRestS: 300,
    });
    expect(r.noise).toEqual({ dayLimit: 70, nightLimit: 55, nightStart: '22:00', nightEnd: '06:00', averageS: 300, clearBelowDb: 3 });
    expect(r.earthworkBan).toEqual({ periods: [{ from: '11-15', to: '03-15' }], alertLevels: ['orange', 'red'] });
    expect(r.outputs).toEqual({ maxOnS: 1800, minOffS: 60 });
    expect(r.alertProfiles).toEqual({ orange: { dustAlarm: { pm10: { warn: 100 }, sprayRestS: 120 } }, red: { dustAlarm: { pm10: { warn: 100 }, sprayRestS: 60 } } });
    const t = p.cityTargets as Record<string, Record<string, { pm10: number; pm25: number; goodDays: number }>>;
    expect(Object.keys(t.table1!)).toHaveLength(10);
    expect(Object.keys(t.table2!)).toHaveLength(8);
    expect(Object.keys(t.table3!)).toHaveLength(10);
    expect(t.table1!.zhengzhou).toMatchObject({ pm10: 122, pm25: 65, goodDays: 189 });
    expect(t.table2!.xinyang).toMatchObject({ pm10: 84, pm25: 58, goodDays: 215 });
    expect(t.table3!.dengzhou).toMatchObject({ pm10: 104, pm25: 54, goodDays: 220 });
  });

  it('site rules override the preset key by key', () => {
    const c = resolveConfig({ ...base(), rules: { sprinkling: { minTempC: 4.5 }, dustAlarm: { pm10: { warn: 140 } } } }).config;
    expect(c.rules.sprinkling).toEqual({ minTempC: 4.5, greenbeltMinTempC: 5, tempMaxAgeS: 300 });
    expect(c.rules.dustAlarm.pm10).toEqual({ warn: 140, severe: 200, clear: 120 });
  });

  it.each([
    ['unit out of range', (c: ReturnType<typeof base>) => (c.devices[2]!.unit = 300), 'devices[2].unit', /expected 1\.\.247, got 300/],
    ['unknown key', (c: ReturnType<typeof base>) => ((c.gateway as Record<string, unknown>).colour = 'red'), 'gateway.colour', /unknown key/],
    ['unknown rule key', (c: ReturnType<typeof base>) => Object.assign(c, { rules: { sweeping: { stopAtBeafort: 3 } } }), 'rules.sweeping.stopAtBeafort', /unknown key/],
    ['wrong type in rules', (c: ReturnType<typeof base>) => Object.assign(c, { rules: { sprinkling: { minTempC: 'four' } } }), 'rules.sprinkling.minTempC', /got "four"/],
    ['unknown driver', (c: ReturnType<typeof base>) => (c.devices[0]!.driver = 'acme-9000'), 'devices[0].driver', /expected one of .*cwt-weather-station/],
    ['unknown bus', (c: ReturnType<typeof base>) => (c.devices[1]!.bus = 'line9'), 'devices[1].bus', /no bus "line9"; buses are line1/],
    ['duplicate device id', (c: ReturnType<typeof base>) => (c.devices[2]!.id = 'head'), 'devices[2].id', /duplicate id "head"/],
    ['unit clash on a bus', (c: ReturnType<typeof base>) => (c.devices[2]!.unit = 2), 'devices[2].unit', /already used on bus line1/],
    ['output on a device without relays', (c: ReturnType<typeof base>) => (c.outputs.sprinkler = { device: 'head', channel: 1 }), 'outputs.sprinkler.device', /has no relay outputs/],
    ['output channel past the module', (c: ReturnType<typeof base>) => (c.outputs.sprinkler = { device: 'relays', channel: 9 }), 'outputs.sprinkler.channel', /expected 1\.\.8, got 9/],
    ['sprinkler kind', (c: ReturnType<typeof base>) => (c.outputs.sprinkler = { device: 'relays', channel: 1, kind: 'lawn' }), 'outputs.sprinkler.kind', /expected one of road \| greenbelt/],
    ['input kind', (c: ReturnType<typeof base>) => (c.inputs.gateCamera = { device: 'dio', channel: 1, kind: 'doorbell' }), 'inputs.gateCamera.kind', /video-trigger \| earthwork-activity/],
    ['source that does not measure it', (c: ReturnType<typeof base>) => Object.assign(c, { sources: { temperature: 'relays' } }), 'sources.temperature', /does not measure temperature/],
    ['bad bus type', (c: ReturnType<typeof base>) => (c.buses[0] = { id: 'line1', type: 'rs485' }), 'buses[0].type', /expected type rtu \| tcp/],
    ['bad gateway id', (c: ReturnType<typeof base>) => (c.gateway.id = 'ZZ site'), 'gateway.id', /a-z, 0-9 and -/],
    ['clear above warn', (c: ReturnType<typeof base>) => Object.assign(c, { rules: { dustAlarm: { pm25: { clear: 90 } } } }), 'rules.dustAlarm.pm25.clear', /at most warn \(75\)/],
    ['bad night time', (c: ReturnType<typeof base>) => Object.assign(c, { rules: { noise: { nightStart: '25:00' } } }), 'rules.noise.nightStart', /HH:MM/],
    ['bad alert profile', (c: ReturnType<typeof base>) => Object.assign(c, { rules: { alertProfiles: { red: { dustAlarm: { pm10: { warm: 90 } } } } } }), 'rules.alertProfiles.red.dustAlarm.pm10.warm', /unknown key/],
    ['frame sensor on a Modbus line', (c: ReturnType<typeof base>) => c.devices.push({ id: 'pms', bus: 'line1', driver: 'pms5003' }), 'devices[3].bus', /bus of type serial/],
    ['http off loopback without a token', (c: ReturnType<typeof base>) => Object.assign(c, { http: { bind: '0.0.0.0' } }), 'http.token', /required when http.bind is not loopback/],
  ])('%s is named by its path', (_name, mutate, where, message) => {
    const c = base();
    mutate(c);
    const found = issues(c);
    expect(found.map((i) => i.path)).toContain(where);
    expect(found.find((i) => i.path === where)!.message).toMatch(message);
  });

  it('secrets are redacted', () => {
    const c = resolveConfig({ ...base(), mqtt: { username: 'u', password: 'p4ss' }, remote: { hmacKey: 'k3y' }, http: { token: 't0k' }, hj212: [{ name: 'environment', pw: 'env-pw' }, { name: 'housing', pw: 'zj-pw' }] }).config;
    const text = JSON.stringify(redact(c));
    for (const secret of ['p4ss', 'k3y', 't0k', 'env-pw', 'zj-pw']) expect(text).not.toContain(secret);
    expect(redact(c).mqtt.username).toBe('u');
    expect(redact(c).hj212.map((p) => p.name)).toEqual(['environment', 'housing']);
  });

  it('hj212 is a list of platforms; one object is still a one-entry list; names must differ', () => {
    const one = resolveConfig({ ...base(), hj212: { enabled: true, host: 'h', port: 1, mn: 'M' } }).config.hj212;
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ enabled: true, host: 'h', port: 1, mn: 'M', st: 39 });
    expect(resolveConfig(base()).config.hj212).toEqual([]);
    expect(() => resolveConfig({ ...base(), hj212: [{ name: 'env' }, { name: 'env' }] })).toThrow(/hj212\[1\]\.name: "env" names two platforms/);
    expect(() => resolveConfig({ ...base(), hj212: [{}, { name: 'hj212' }] })).toThrow(/hj212\[1\]\.name/); // the first is hj212 by default
    expect(() => resolveConfig({ ...base(), hj212: [{ enabled: true }] })).toThrow(/hj212\[0\]: enabled needs host and port/);
  });

  it('the JSON Schema describes the file and leaves the rules optional', () => {
    const s = configJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown>; required?: string[] }>; required: string[] };
    expect(s.required).toContain('gateway');
    expect(s.required).not.toContain('rules');
    expect(Object.keys(s.properties)).toEqual(expect.arrayContaining(['gateway', 'buses', 'devices', 'outputs', 'inputs', 'sources', 'rules', 'storage', 'mqtt', 'aqi', 'hj212', 'http', 'remote']));
    expect(s.properties.rules!.required).toBeUndefined();
  });
});

describe('dustgate config', () => {
  it('validate: ok for a good file, one line per problem with its path for a bad one', async () => {
    const ok = await dustgate(['config', 'validate', 'seeds/sites/demo.yaml']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/demo\.yaml: ok \(gateway demo-site-0001/);
    const dir = tempDir('cfg');
    const bad = base();
    bad.devices[2]!.unit = 300;
    (bad.devices[1] as Record<string, unknown>).pollMs = 'fast';
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, stringify(bad));
    const r = await dustgate(['config', 'validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`${file}: devices[1].pollMs: expected 50..3600000, got "fast"`, `${file}: devices[2].unit: expected 1..247, got 300`]);
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'gateway:\n  id: [unclosed\n');
    const b = await dustgate(['config', 'validate', broken]);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/line \d+, column \d+/);
  });

  it('schema prints JSON; run with a bad config says what to fix in one line', async () => {
    const s = await dustgate(['config', 'schema']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout).title).toBe('dustgate site config');
    const r = await dustgate(['run', '--config', '/nonexistent/site.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^dustgate: \/nonexistent\/site\.yaml: no such file/);
  });
});
