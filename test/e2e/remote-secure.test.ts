/**
 * Remote operations against mosquitto with TLS client certificates, passwords and an ACL
 * (certificates made with openssl at test time), driven through `dustgate remote` as an operator
 * would: a city-wide alert, a signed threshold change, refusals, a frost-blocked output.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { loadScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { ROOT, makePki, siteConfig, startMosquitto, tempDir, type Mosquitto } from '../helpers/gateway-rig.js';
import { freePort, requireTool, runCommand, waitFor } from '../helpers/system.js';

const KEY = 'fleet-signing-key-0123456789abcdef';
const ZZ = ['zz-a-0001', 'zz-b-0002', 'zz-c-0003'];
const LY = 'ly-a-0001';
let sim: Simulator;
let m: Mosquitto;
let pki: ReturnType<typeof makePki>;
let dir: string;
let tlsUrl: string;
let pwPort: number;
let simPort: number;
const gateways = new Map<string, Gateway>();

function dustgate(args: string[]) {
  return runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT, timeoutMs: 30_000 });
}
/** The operator's connection flags (TLS with the operator's certificate). */
const opFlags = (sign = true) => ['--broker', tlsUrl, '--ca', pki.ca, '--cert', pki.clients.operator!.cert, '--key', pki.clients.operator!.key, '--by', 'ops-desk', '--timeout', '8', ...(sign ? ['--hmac-key', KEY] : [])];

beforeAll(async () => {
  requireTool('mosquitto_passwd', ['-h']);
  dir = tempDir('secure');
  pki = makePki(dir, [...ZZ, LY, 'operator', 'intruder']);
  const pw = path.join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', pw, 'site-user', 'right-pass']);
  execFileSync('mosquitto_passwd', ['-b', pw, 'site-user-2026', 'rotated-pass']);
  const acl = path.join(dir, 'acl');
  // operators may do anything under dustgate/; a gateway (its certificate CN is its id) only its own topics,
  // and it may read (not write) the group and fleet command topics
  writeFileSync(acl, ['user operator', 'topic readwrite dustgate/#', '', 'user site-user', 'topic readwrite dustgate/pw-site-0001/#', 'topic read dustgate/_all/#', '', 'user site-user-2026', 'topic readwrite dustgate/pw-site-0001/#', 'topic read dustgate/_all/#', '', 'pattern readwrite dustgate/%u/#', 'pattern read dustgate/_group/#', 'pattern read dustgate/_all/#', ''].join('\n'));
  pwPort = await freePort();
  m = await startMosquitto({
    dir,
    listeners: (port) => [
      'per_listener_settings true',
      `listener ${port} 127.0.0.1`,
      `cafile ${pki.ca}`,
      `certfile ${pki.serverCert}`,
      `keyfile ${pki.serverKey}`,
      'require_certificate true',
      'use_identity_as_username true',
      `acl_file ${acl}`,
      `listener ${pwPort} 127.0.0.1`,
      'allow_anonymous false',
      `password_file ${pw}`,
      `acl_file ${acl}`,
    ],
  });
  tlsUrl = `mqtts://127.0.0.1:${m.port}`;
  sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios/dust-event.yaml')), { wireTime: false });
  simPort = await freePort();
  await sim.serveTcp('127.0.0.1', simPort);
  for (const id of [...ZZ, LY]) {
    const gdir = tempDir(id);
    const base = siteConfig({ id, bus: { type: 'tcp', host: '127.0.0.1', port: simPort }, mqttUrl: tlsUrl, dir: gdir, pollMs: 200 });
    const loaded = resolveConfig({
      ...base,
      mqtt: { ...base.mqtt, group: id.startsWith('zz') ? 'zhengzhou' : 'luoyang', ca: pki.ca, cert: pki.clients[id]!.cert, key: pki.clients[id]!.key },
      remote: { hmacKey: KEY, maxSkewS: 300 },
    });
    const gw = new Gateway({ loaded, logger: pino({ level: 'silent' }), tickMs: 100 });
    await gw.start();
    gateways.set(id, gw);
  }
  await waitFor(() => [...gateways.values()].every((g) => g.uplink?.connected), 10_000);
  await new Promise((r) => setTimeout(r, 300));
}, 60_000);

afterAll(async () => {
  for (const g of gateways.values()) await g.stop();
  await sim?.stop();
  await m?.stop();
});

describe('broker security (mosquitto: TLS client certificates, passwords, ACL)', () => {
  it('gateways connect with their certificates; no certificate, a foreign CA or a wrong password is refused', async () => {
    expect([...gateways.values()].every((g) => g.uplink?.connected)).toBe(true);
    await expect(mqtt.connectAsync(tlsUrl, { ca: readFileSync(pki.ca), reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow();
    const other = makePki(tempDir('other-ca'), ['zz-a-0001']);
    await expect(
      mqtt.connectAsync(tlsUrl, { ca: readFileSync(pki.ca), cert: readFileSync(other.clientCert), key: readFileSync(other.clientKey), reconnectPeriod: 0, connectTimeout: 3000 }),
    ).rejects.toThrow();
    await expect(mqtt.connectAsync(`mqtt://127.0.0.1:${pwPort}`, { username: 'site-user', password: 'wrong', reconnectPeriod: 0, connectTimeout: 3000 })).rejects.toThrow(/Not authorized|Bad user/i);
    const ok = await mqtt.connectAsync(`mqtt://127.0.0.1:${pwPort}`, { username: 'site-user', password: 'right-pass', reconnectPeriod: 0 });
    await ok.endAsync();
  });

  it('the ACL stops a gateway from commanding another gateway', async () => {
    const a = pki.clients['zz-a-0001']!;
    const client = await mqtt.connectAsync(tlsUrl, { ca: readFileSync(pki.ca), cert: readFileSync(a.cert), key: readFileSync(a.key), clientId: 'impostor', reconnectPeriod: 0 });
    const { signedEnvelope } = await import('../../gateway/remote.js');
    await client.publishAsync('dustgate/zz-b-0002/cmd/alert', signedEnvelope({ requestId: 'acl-1', level: 'red' }, KEY), { qos: 1 });
    await new Promise((r) => setTimeout(r, 1500));
    await client.endAsync();
    expect(gateways.get('zz-b-0002')!.engine.alertLevel).not.toBe('red');
  });
});

describe('dustgate remote (signed, over TLS)', () => {
  it('alert --group reaches the three gateways of the city and not the fourth; each answers', async () => {
    const r = await dustgate(['remote', 'alert', 'orange', '--group', 'zhengzhou', ...opFlags()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(ZZ.map((id) => `${id}: ok alert level orange`));
    for (const id of ZZ) expect(gateways.get(id)!.engine.alertLevel).toBe('orange');
    expect(gateways.get(LY)!.engine.alertLevel).toBe('none');
    // the profile applies: orange lowers pm10 warn to 100
    expect(gateways.get('zz-a-0001')!.engine.effective.dustAlarm.pm10.warn).toBe(100);
  });

  it('config set with PATH=VALUE is signed, applied and versioned; unsigned it is refused; a bad value names its path', async () => {
    const gw = gateways.get('zz-c-0003')!;
    const v0 = gw.version;
    const ok = await dustgate(['remote', 'config', 'set', '--gateway', 'zz-c-0003', 'rules.dustAlarm.pm10.warn=130', 'rules.sprinkling.tempMaxAgeS=120', ...opFlags()]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe(`zz-c-0003: ok applied, version ${v0 + 1}`);
    expect(gw.config.rules.dustAlarm.pm10.warn).toBe(130);
    expect(gw.config.rules.sprinkling.tempMaxAgeS).toBe(120);
    const unsigned = await dustgate(['remote', 'config', 'set', '--gateway', 'zz-c-0003', 'rules.dustAlarm.pm10.warn=10', ...opFlags(false)]);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/zz-c-0003: refused: unsigned/);
    const bad = await dustgate(['remote', 'config', 'set', '--gateway', 'zz-c-0003', 'rules.sweeping.stopAtBeaufort=40', ...opFlags()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/zz-c-0003: refused: rules\.sweeping\.stopAtBeaufort: expected 1\.\.12, got 40/);
    expect(gw.version).toBe(v0 + 1);
    // a YAML patch file works the same way
    const patch = path.join(dir, 'patch.yaml');
    writeFileSync(patch, 'rules:\n  noise: { dayLimit: 68 }\n');
    const file = await dustgate(['remote', 'config', 'set', '--gateway', 'zz-c-0003', '--file', patch, ...opFlags()]);
    expect(file.code, file.stderr).toBe(0);
    expect(gw.config.rules.noise.dayLimit).toBe(68);
    const hist = await dustgate(['remote', 'config', 'history', '--gateway', 'zz-c-0003', ...opFlags()]);
    expect(hist.code, hist.stderr).toBe(0);
    expect(hist.stdout).toMatch(new RegExp(`current version ${v0 + 2}`));
    expect(hist.stdout).toMatch(/remote\s+ops-desk-/);
    const get = await dustgate(['remote', 'config', 'get', '--gateway', 'zz-c-0003', ...opFlags()]);
    expect(get.code, get.stderr).toBe(0);
    const cfg = JSON.parse(get.stdout) as { version: number; remote: { hmacKey: string }; rules: { noise: { dayLimit: number } } };
    expect(cfg.version).toBe(v0 + 2);
    expect(cfg.rules.noise.dayLimit).toBe(68);
    expect(cfg.remote.hmacKey).toBe('***');
    expect(get.stdout).not.toContain(KEY);
  });

  it('output on for the sprinkler at 3.9 °C is refused with temperature_below_min', async () => {
    sim.setValues('head', { temperature: 3.9 });
    const gw = gateways.get('zz-b-0002')!;
    await waitFor(() => gw.engine.temperature?.v === 3.9, 5000);
    const r = await dustgate(['remote', 'output', 'sprinkler', 'on', '--for', '10m', '--gateway', 'zz-b-0002', ...opFlags()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/zz-b-0002: refused: temperature_below_min: temperature 3\.9 °C is below 4 °C/);
    sim.setValues('head', { temperature: null });
  });

  it('a time-out and a missing answer are a non-zero exit with what to check', async () => {
    const r = await dustgate(['remote', 'alert', 'red', '--gateway', 'no-such-gateway', ...opFlags(), '--timeout', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no answer to alert red in 1 s/);
    const noCert = await dustgate(['remote', 'alert', 'red', '--gateway', 'zz-a-0001', '--broker', tlsUrl, '--ca', pki.ca, '--timeout', '2']);
    expect(noCert.code).toBe(1);
    expect(noCert.stderr.trim().split('\n'), noCert.stderr).toHaveLength(1);
    expect(noCert.stderr).toMatch(/cannot connect to mqtts:\/\/127\.0\.0\.1:\d+/);
  });

  it('watch --group tails the city\'s gateways readably, and config history lists versions locally', async () => {
    const { spawn } = await import('node:child_process');
    const w = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'remote', 'watch', '--group', 'luoyang', ...opFlags()], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    w.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    w.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('watching group luoyang'), 15_000);
      await new Promise((r) => setTimeout(r, 500)); // the retained configs tell it who is in which group
      const r = await dustgate(['remote', 'alert', 'yellow', '--all', ...opFlags()]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(4);
      await waitFor(() => /ly-a-0001\s+event #\d+ alert_level level=yellow/.test(out), 10_000);
      await waitFor(() => /ly-a-0001\s+cmd\/result alert ops-desk-\S+ ok/.test(out), 10_000);
      expect(out).not.toMatch(/zz-a-0001/);
    } finally {
      w.kill('SIGINT');
    }
    const gw = gateways.get('zz-c-0003')!;
    const cfgFile = path.join(dir, 'zz-c.json');
    writeFileSync(cfgFile, JSON.stringify(resolveConfig(gw.loaded.raw).raw));
    const h = await dustgate(['config', 'history', '--config', cfgFile, '--json']);
    expect(h.code, h.stderr).toBe(0);
    const versions = JSON.parse(h.stdout) as { version: number; source: string }[];
    expect(versions[0]).toMatchObject({ version: gw.version, source: 'remote' });
    expect(versions.at(-1)).toMatchObject({ source: 'file' });
  });

  it('broker credentials can be rotated remotely; wrong ones are tried on a second connection and rolled back', async () => {
    const gdir = tempDir('pw-site');
    const base = siteConfig({ id: 'pw-site-0001', bus: { type: 'tcp', host: '127.0.0.1', port: simPort }, mqttUrl: `mqtt://127.0.0.1:${pwPort}`, dir: gdir, pollMs: 200 });
    const loaded = resolveConfig({ ...base, mqtt: { ...base.mqtt, username: 'site-user', password: 'right-pass' }, remote: { hmacKey: KEY } });
    const logs: string[] = [];
    const gw = new Gateway({ loaded, logger: pino({ level: 'debug' }, { write: (l: string) => logs.push(l) }), tickMs: 100 });
    await gw.start();
    try {
      await waitFor(() => gw.uplink?.connected, 10_000);
      await new Promise((r) => setTimeout(r, 300));
      const v0 = gw.version;
      const pwFlags = ['--broker', `mqtt://127.0.0.1:${pwPort}`, '--username', 'site-user', '--password', 'right-pass', '--hmac-key', KEY, '--timeout', '20'];
      const wrong = await dustgate(['remote', 'config', 'set', '--gateway', 'pw-site-0001', 'mqtt.password=not-the-password', ...pwFlags]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/pw-site-0001: refused: mqtt: the new broker settings did not work \(.*(Not authorized|Bad user).*\); the old ones stay/);
      expect(gw.version).toBe(v0);
      expect(gw.uplink!.connected).toBe(true);
      const ok = await dustgate(['remote', 'config', 'set', '--gateway', 'pw-site-0001', 'mqtt.username=site-user-2026', 'mqtt.password=rotated-pass', ...pwFlags]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout.trim()).toBe(`pw-site-0001: ok applied, version ${v0 + 1}`);
      expect(gw.config.mqtt.username).toBe('site-user-2026');
      // still delivering, under the new user
      const before = gw.uplink!.counters.acked;
      await waitFor(() => gw.uplink!.counters.acked > before + 3, 10_000);
      const got = await dustgate(['remote', 'config', 'get', '--gateway', 'pw-site-0001', ...pwFlags]);
      expect(got.stdout).not.toContain('rotated-pass');
      // secrets never reach the log, whatever was refused or applied
      expect(logs.length).toBeGreaterThan(5);
      for (const secret of ['right-pass', 'rotated-pass', 'not-the-password', KEY]) expect(logs.join('\n')).not.toContain(secret);
    } finally {
      await gw.stop();
    }
  });

  it('an operator file carries the broker, TLS files, key and name; a wrong one is one clear line', async () => {
    const file = path.join(dir, 'operator.yaml');
    writeFileSync(file, [`broker: ${tlsUrl}`, `ca: ${pki.ca}`, `cert: ${pki.clients.operator!.cert}`, `key: ${pki.clients.operator!.key}`, `hmacKey: ${KEY}`, 'by: zhang.wei', ''].join('\n'));
    const r = await dustgate(['remote', 'alert', 'blue', '--gateway', 'zz-a-0001', '--operator', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('zz-a-0001: ok alert level blue');
    expect(gateways.get('zz-a-0001')!.engine.alertLevel).toBe('blue');
    const bad = path.join(dir, 'operator-bad.yaml');
    writeFileSync(bad, `broker: ${tlsUrl}\nhmac_key: x\n`);
    const b = await dustgate(['remote', 'alert', 'blue', '--gateway', 'zz-a-0001', '--operator', bad]);
    expect(b.code).toBe(1);
    expect(b.stderr.trim().split('\n')).toHaveLength(1);
    expect(b.stderr).toMatch(/operator-bad\.yaml: \(top\): unknown key hmac_key/);
  });
});
