/**
 * Remote operations end to end (simulator over Modbus TCP, gateways, mosquitto with TLS client
 * certificates and an ACL, an operator client):
 * config changes that are refused with their path, applied live, persisted and rolled back;
 * commands with every interlock; signed envelopes.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { resolveConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { signedEnvelope, sign } from '../../gateway/remote.js';
import { loadScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { ROOT, Subscriber, checkNoLoss, makePki, siteConfig, startMosquitto, tempDir, type Mosquitto } from '../helpers/gateway-rig.js';
import { freePort, waitFor } from '../helpers/system.js';

const GATEWAYS = ['remote-site-0001', 'remote-site-0002', 'remote-site-0003', 'remote-site-0004', 'zz-a-0001', 'zz-b-0002', 'zz-c-0003', 'ly-a-0001', 'signed-site-0001'];
let pki: ReturnType<typeof makePki>;
let broker: Mosquitto;
let url: string;
beforeAll(async () => {
  const dir = tempDir('remote-pki');
  pki = makePki(dir, [...GATEWAYS, 'operator']);
  const acl = path.join(dir, 'acl');
  writeFileSync(acl, ['user operator', 'topic readwrite dustgate/#', '', 'pattern readwrite dustgate/%u/#', 'pattern read dustgate/_group/#', 'pattern read dustgate/_all/#', ''].join('\n'));
  broker = await startMosquitto({
    dir,
    listeners: (port) => [`listener ${port} 127.0.0.1`, `cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true', 'use_identity_as_username true', `acl_file ${acl}`],
  });
  url = `mqtts://127.0.0.1:${broker.port}`;
}, 60_000);
afterAll(async () => {
  await broker?.stop();
});
const tlsAs = (name: string) => ({ ca: readFileSync(pki.ca), cert: readFileSync(pki.clients[name]!.cert), key: readFileSync(pki.clients[name]!.key) });

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups.length = 0;
});

interface Fleet {
  sim: Simulator;
  url: string;
  simPort: number;
  sub: Subscriber;
  op: MqttClient;
  gateway(id: string, o?: { group?: string; remote?: Record<string, unknown>; dir?: string }): Promise<Gateway>;
  /** Send a request and wait for the answer on the gateway's result topic. */
  ask(topic: string, payload: string | Buffer, requestId: string | null, resultOf: string): Promise<Record<string, unknown>>;
}

async function fleet(scenario = 'dust-event'): Promise<Fleet> {
  const sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios', `${scenario}.yaml`)), { wireTime: false });
  const simPort = await freePort();
  await sim.serveTcp('127.0.0.1', simPort);
  cleanups.push(() => sim.stop());
  const sub = await Subscriber.connect(url, 'dustgate/#', tlsAs('operator'));
  cleanups.push(() => sub.close());
  const op = await mqtt.connectAsync(url, tlsAs('operator'));
  cleanups.push(() => op.endAsync(true));
  return {
    sim,
    url,
    simPort,
    sub,
    op,
    async gateway(id, o = {}) {
      const dir = o.dir ?? tempDir(id);
      const cfg = siteConfig({ id, bus: { type: 'tcp', host: '127.0.0.1', port: simPort }, mqttUrl: url, dir, pollMs: 100 });
      const tls = { ca: pki.ca, cert: pki.clients[id]!.cert, key: pki.clients[id]!.key };
      const loaded = resolveConfig({ ...cfg, mqtt: { ...cfg.mqtt, ...tls, group: o.group ?? 'zhengzhou' }, ...(o.remote ? { remote: o.remote } : {}) });
      const gw = new Gateway({ loaded, logger: pino({ level: 'silent' }), tickMs: 50 });
      cleanups.push(() => gw.stop());
      await gw.start();
      await waitFor(() => gw.uplink?.connected, 5000);
      await new Promise((r) => setTimeout(r, 100)); // subscriptions in place
      return gw;
    },
    async ask(topic, payload, requestId, resultOf) {
      const n = sub.messages.length;
      await op.publishAsync(topic, payload, { qos: 1 });
      const hit = await waitFor(() => sub.messages.slice(n).find((m) => m.topic === resultOf && m.payload.requestId === requestId), 10_000);
      return hit.payload;
    },
  };
}

describe('remote config', () => {
  it('refuses 23 bad configs with the path and the reason; version and config stay; telemetry seq has no gap', async () => {
    const f = await fleet();
    const gw = await f.gateway('remote-site-0001');
    const P = 'dustgate/remote-site-0001';
    const v0 = gw.version;
    const before = JSON.stringify(gw.config);
    const closed = await freePort();
    const bad: [string, string | Buffer, RegExp][] = [
      ['wrong type', JSON.stringify({ requestId: 'b1', patch: { rules: { sprinkling: { minTempC: 'cold' } } } }), /rules\.sprinkling\.minTempC: expected -50\.\.50, got "cold"/],
      ['unknown key', JSON.stringify({ requestId: 'b2', patch: { rules: { sprinkling: { minTemp: 3 } } } }), /rules\.sprinkling\.minTemp: unknown key/],
      ['unknown section', JSON.stringify({ requestId: 'b3', patch: { lights: { on: true } } }), /lights: unknown key/],
      ['out of range', JSON.stringify({ requestId: 'b4', patch: { rules: { sweeping: { stopAtBeaufort: 40 } } } }), /rules\.sweeping\.stopAtBeaufort: expected 1\.\.12, got 40/],
      ['negative threshold', JSON.stringify({ requestId: 'b5', patch: { rules: { dustAlarm: { pm10: { warn: -5 } } } } }), /rules\.dustAlarm\.pm10\.warn: expected 0\.\./],
      ['clear above warn', JSON.stringify({ requestId: 'b6', patch: { rules: { dustAlarm: { pm10: { clear: 500 } } } } }), /rules\.dustAlarm\.pm10\.clear: expected at most warn/],
      ['unknown device in an output', JSON.stringify({ requestId: 'b7', patch: { outputs: { sprinkler: { device: 'pump9' } } } }), /outputs\.sprinkler\.device: no device "pump9"/],
      ['unknown bus', JSON.stringify({ requestId: 'b8', patch: { devices: [{ id: 'head', bus: 'nowhere', unit: 1, driver: 'cwt-weather-station' }] } }), /devices\[0\]\.bus: no bus "nowhere"/],
      ['duplicate ids', JSON.stringify({ requestId: 'b9', patch: { devices: [{ id: 'head', bus: 'main', unit: 1, driver: 'cwt-weather-station' }, { id: 'head', bus: 'main', unit: 2, driver: 'waveshare-relay-8ch' }] } }), /devices\[1\]\.id: duplicate id "head"/],
      ['unknown driver', JSON.stringify({ requestId: 'b10', patch: { devices: [{ id: 'head', bus: 'main', unit: 1, driver: 'acme' }] } }), /devices\[0\]\.driver: expected one of/],
      ['unit out of range', JSON.stringify({ requestId: 'b11', patch: { devices: [{ id: 'head', bus: 'main', unit: 300, driver: 'cwt-weather-station' }] } }), /devices\[0\]\.unit: expected 1\.\.247, got 300/],
      ['bad channel', JSON.stringify({ requestId: 'b12', patch: { outputs: { sprinkler: { channel: 12 } } } }), /outputs\.sprinkler\.channel: expected 1\.\.8, got 12/],
      ['bad time', JSON.stringify({ requestId: 'b13', patch: { rules: { noise: { nightStart: '7pm' } } } }), /rules\.noise\.nightStart: expected a time HH:MM/],
      ['bad alert level list', JSON.stringify({ requestId: 'b14', patch: { rules: { earthworkBan: { alertLevels: ['purple'] } } } }), /rules\.earthworkBan\.alertLevels\[0\]: expected one of none/],
      ['deletes a required section', JSON.stringify({ requestId: 'b15', patch: { gateway: null } }), /gateway: required/],
      ['switching the uplink off', JSON.stringify({ requestId: 'b23', patch: { mqtt: { enabled: false } } }), /mqtt\.enabled: cannot be changed remotely/],
      ['identity change', JSON.stringify({ requestId: 'b16', patch: { gateway: { id: 'someone-else' } } }), /gateway\.id: cannot be changed remotely/],
      ['broker change', JSON.stringify({ requestId: 'b17', patch: { mqtt: { url: 'mqtt://127.0.0.2:1883' } } }), /mqtt: the new broker settings did not work \(.*ECONNREFUSED.*\); the old ones stay/],
      ['patch is not an object', JSON.stringify({ requestId: 'b18', patch: [1, 2] }), /patch: expected an object/],
      ['neither patch nor config', JSON.stringify({ requestId: 'b19' }), /expected "patch" or "config"/],
      ['a bus that cannot open', JSON.stringify({ requestId: 'b20', patch: { buses: [{ id: 'main', type: 'tcp', host: '127.0.0.1', port: closed, timeoutMs: 300 }] } }), /buses\[0\]: cannot open 127\.0\.0\.1:\d+/],
      ['malformed JSON', '{"requestId": "b21", "patch": {', /malformed: not JSON/],
      ['a 10 MB payload', Buffer.alloc(10 * 1024 * 1024, 0x20), /too_large: payload of 10485760 bytes is over/],
    ];
    for (const [name, payload, reason] of bad) {
      // an unreadable message has no request id to answer with
      const id = name === 'malformed JSON' || name === 'a 10 MB payload' ? null : /"requestId": ?"(b\d+)"/.exec(payload.toString().slice(0, 200))![1]!;
      const res = await f.ask(`${P}/config/set`, payload, id, `${P}/config/result`);
      expect(res.ok, name).toBe(false);
      expect(res.version, name).toBe(v0);
      const errors = res.errors as { path: string; message: string }[];
      expect(errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('\n'), name).toMatch(reason);
    }
    expect(gw.version).toBe(v0);
    expect(JSON.stringify(gw.config)).toBe(before);
    // every refusal is an event with its request id and topic
    const refusals = f.sub.events('remote_refused');
    await waitFor(() => f.sub.events('remote_refused').filter((e) => e.topic === `${P}/config/set`).length === bad.length, 3000);
    expect(refusals.map((e) => e.requestId)).toEqual(expect.arrayContaining(['b1', 'b9', 'b16', 'b20']));
    expect(refusals.find((e) => e.requestId === 'b20')).toMatchObject({ code: 'rolled_back' });
    expect(refusals.find((e) => e.requestId === 'b17')).toMatchObject({ code: 'rolled_back' });
    // telemetry went on through all of it, and still goes on
    const last = Math.max(...f.sub.seqs());
    await waitFor(() => f.sub.readings('head').some((r) => (r.seq as number) > last), 5000);
    const res = checkNoLoss(f.sub.seqs());
    expect(res.first).toBe(1);
  });

  it('a good patch applies on the next reading, is published with its version, and survives a restart', async () => {
    const f = await fleet();
    const dir = tempDir('remote-good');
    let gw = await f.gateway('remote-site-0002', { dir });
    const P = 'dustgate/remote-site-0002';
    const v0 = gw.version;
    f.sim.setValues('head', { pm10: 90, temperature: 18 });
    await new Promise((r) => setTimeout(r, 500));
    expect(f.sub.events('dust_alarm').filter((e) => e.metric === 'pm10')).toEqual([]);
    const res = await f.ask(`${P}/config/set`, JSON.stringify({ requestId: 'good-1', patch: { rules: { dustAlarm: { pm10: { warn: 80, clear: 60 } } } } }), 'good-1', `${P}/config/result`);
    expect(res).toMatchObject({ ok: true, version: v0 + 1 });
    await waitFor(() => f.sub.events('dust_alarm').some((e) => e.metric === 'pm10' && e.state === 'raised'), 5000);
    expect(f.sub.events('dust_alarm').find((e) => e.metric === 'pm10')).toMatchObject({ threshold: 80 });
    const cfg = await waitFor(() => f.sub.on('config').find((m) => (m.payload as { version: number }).version === v0 + 1), 5000);
    expect((cfg.payload as { rules: { dustAlarm: { pm10: { warn: number } } } }).rules.dustAlarm.pm10.warn).toBe(80);
    await waitFor(() => f.sub.events('remote_accepted').some((e) => e.requestId === 'good-1' && e.command === 'config' && e.version === v0 + 1), 3000);
    // restart on the same site file and buffer: the remote change is still in force
    await gw.stop();
    gw = await f.gateway('remote-site-0002', { dir });
    expect(gw.version).toBe(v0 + 1);
    expect(gw.config.rules.dustAlarm.pm10.warn).toBe(80);
    const history = gw.store.versions.history();
    expect(history.map((h) => [h.version, h.source, h.requestId])).toEqual([
      [v0 + 1, 'remote', 'good-1'],
      [v0, 'file', null],
    ]);
  });
});

describe('remote commands', () => {
  it('output obeys the frost interlock: on at 3.9 °C is refused with temperature_below_min; at 4.0 it switches', async () => {
    const f = await fleet();
    await f.gateway('remote-site-0003');
    const P = 'dustgate/remote-site-0003';
    f.sim.setValues('head', { temperature: 3.9, pm10: 50 });
    await waitFor(() => f.sub.readings('head').some((r) => (r.values as Record<string, number>).temperature === 3.9), 5000);
    const no = await f.ask(`${P}/cmd/output`, JSON.stringify({ requestId: 'out-1', output: 'sprinkler', state: 'on', durationS: 60 }), 'out-1', `${P}/cmd/result`);
    expect(no).toMatchObject({ command: 'output', ok: false, error: { code: 'temperature_below_min' } });
    expect(f.sim.device('relays')!.overrides.ch1 ?? 0).toBe(0);
    // events go through the buffer, so they may follow the direct answer by a moment
    await waitFor(() => f.sub.events('sprinkler_blocked').some((e) => e.requestId === 'out-1' && e.reason === 'temperature_below_min'), 3000);
    f.sim.setValues('head', { temperature: 4.0 });
    await waitFor(() => f.sub.readings('head').some((r) => (r.values as Record<string, number>).temperature === 4), 5000);
    const yes = await f.ask(`${P}/cmd/output`, JSON.stringify({ requestId: 'out-2', output: 'sprinkler', state: 'on', durationS: 60 }), 'out-2', `${P}/cmd/result`);
    expect(yes).toMatchObject({ ok: true, output: 'sprinkler', state: 'on' });
    await waitFor(() => f.sim.device('relays')!.overrides.ch1 === 1, 5000);
    // and off again at once is fine; on again within minOffS is not
    await f.ask(`${P}/cmd/output`, JSON.stringify({ requestId: 'out-3', output: 'sprinkler', state: 'off' }), 'out-3', `${P}/cmd/result`);
    const soon = await f.ask(`${P}/cmd/output`, JSON.stringify({ requestId: 'out-4', output: 'sprinkler', state: 'on' }), 'out-4', `${P}/cmd/result`);
    expect(soon).toMatchObject({ ok: false, error: { code: 'min_off_time' } });
  });

  it('ping, read, alert, republish and unknown commands answer on P/cmd/result', async () => {
    const f = await fleet();
    const gw = await f.gateway('remote-site-0004');
    const P = 'dustgate/remote-site-0004';
    expect(await f.ask(`${P}/cmd/ping`, JSON.stringify({ requestId: 'p1' }), 'p1', `${P}/cmd/result`)).toMatchObject({ ok: true, command: 'ping', gateway: 'remote-site-0004' });
    const read = await f.ask(`${P}/cmd/read`, JSON.stringify({ requestId: 'r1', device: 'head' }), 'r1', `${P}/cmd/result`);
    expect(read).toMatchObject({ ok: true, device: 'head', flags: { pm10: 'N' } });
    expect(Object.keys(read.values as object)).toContain('temperature');
    expect(await f.ask(`${P}/cmd/read`, JSON.stringify({ requestId: 'r2', device: 'nope' }), 'r2', `${P}/cmd/result`)).toMatchObject({ ok: false, error: { code: 'unknown_device' } });
    expect(await f.ask(`${P}/cmd/alert`, JSON.stringify({ requestId: 'a1', level: 'red' }), 'a1', `${P}/cmd/result`)).toMatchObject({ ok: true, level: 'red' });
    expect(gw.engine.effective.dustAlarm.pm10.warn).toBe(100);
    expect(await f.ask(`${P}/cmd/alert`, JSON.stringify({ requestId: 'a2', level: 'purple' }), 'a2', `${P}/cmd/result`)).toMatchObject({ ok: false, error: { code: 'invalid_argument' } });
    expect(await f.ask(`${P}/cmd/republish`, JSON.stringify({ requestId: 'rp1', fromSeq: 1, toSeq: 10 }), 'rp1', `${P}/cmd/result`)).toMatchObject({ ok: true, republished: 0 });
    expect(await f.ask(`${P}/cmd/reboot`, JSON.stringify({ requestId: 'x1' }), 'x1', `${P}/cmd/result`)).toMatchObject({ ok: false, error: { code: 'unknown_command' } });
    // a request id is used once
    expect(await f.ask(`${P}/cmd/ping`, JSON.stringify({ requestId: 'p1' }), 'p1', `${P}/cmd/result`)).toMatchObject({ ok: false, error: { code: 'replayed' } });
    await waitFor(() => (f.sub.on('state').at(-1)?.payload as { alertLevel?: string }).alertLevel === 'red', 3000);
    // the fleet topic reaches it too
    expect(await f.ask('dustgate/_all/cmd/ping', JSON.stringify({ requestId: 'all-1' }), 'all-1', `${P}/cmd/result`)).toMatchObject({ ok: true, command: 'ping' });
    // the alert level survives a restart
    const dir = path.dirname(gw.config.storage.path);
    await gw.stop();
    const again = await f.gateway('remote-site-0004', { dir });
    expect(again.engine.alertLevel).toBe('red');
  });

  it('one alert on the group topic reaches the three gateways of that group and not the fourth', async () => {
    const f = await fleet();
    const zz = await Promise.all(['zz-a-0001', 'zz-b-0002', 'zz-c-0003'].map((id) => f.gateway(id, { group: 'zhengzhou' })));
    const ly = await f.gateway('ly-a-0001', { group: 'luoyang' });
    const n = f.sub.messages.length;
    await f.op.publishAsync('dustgate/_group/zhengzhou/cmd/alert', JSON.stringify({ requestId: 'city-alert-1', level: 'orange', by: 'ops' }), { qos: 1 });
    await waitFor(() => f.sub.messages.slice(n).filter((m) => m.topic.endsWith('/cmd/result') && m.payload.requestId === 'city-alert-1').length === 3, 5000);
    await new Promise((r) => setTimeout(r, 300));
    const results = f.sub.messages.slice(n).filter((m) => m.topic.endsWith('/cmd/result') && m.payload.requestId === 'city-alert-1');
    expect(results.map((m) => m.topic).sort()).toEqual(['dustgate/zz-a-0001/cmd/result', 'dustgate/zz-b-0002/cmd/result', 'dustgate/zz-c-0003/cmd/result']);
    for (const g of zz) expect(g.engine.alertLevel).toBe('orange');
    expect(ly.engine.alertLevel).toBe('none');
    for (const g of zz) expect(g.engine.effective.dustAlarm.sprayRestS).toBe(120);
  });
});

describe('signed envelopes (remote.hmacKey)', () => {
  it('unsigned, wrong signature, replayed and out-of-window messages change nothing and are each refused', async () => {
    const f = await fleet();
    const key = 'k3y-for-tests-0123456789';
    const gw = await f.gateway('signed-site-0001', { remote: { hmacKey: key, maxSkewS: 300 } });
    const P = 'dustgate/signed-site-0001';
    const alert = (id: string, extra: Record<string, unknown> = {}) => ({ requestId: id, level: 'red', ...extra });
    const r1 = await f.ask(`${P}/cmd/alert`, JSON.stringify(alert('s1')), 's1', `${P}/cmd/result`);
    expect(r1).toMatchObject({ ok: false, error: { code: 'unsigned' } });
    const body = JSON.stringify({ ...alert('s2'), ts: Date.now() });
    const r2 = await f.ask(`${P}/cmd/alert`, JSON.stringify({ body, sig: sign(body, 'another-key') }), 's2', `${P}/cmd/result`);
    expect(r2).toMatchObject({ ok: false, error: { code: 'bad_signature' } });
    const old = await f.ask(`${P}/cmd/alert`, signedEnvelope(alert('s3'), key, Date.now() - 301_000), 's3', `${P}/cmd/result`);
    expect(old).toMatchObject({ ok: false, error: { code: 'expired' } });
    const future = await f.ask(`${P}/cmd/alert`, signedEnvelope(alert('s4'), key, Date.now() + 400_000), 's4', `${P}/cmd/result`);
    expect(future).toMatchObject({ ok: false, error: { code: 'expired' } });
    const cfg = await f.ask(`${P}/config/set`, JSON.stringify({ requestId: 's5', patch: { rules: { sprinkling: { minTempC: 1 } } } }), 's5', `${P}/config/result`);
    expect(cfg).toMatchObject({ ok: false });
    expect(gw.engine.alertLevel).toBe('none');
    expect(gw.config.rules.sprinkling.minTempC).toBe(4);
    // a good one is accepted, and the very same message again is a replay
    const good = signedEnvelope(alert('s6'), key);
    expect(await f.ask(`${P}/cmd/alert`, good, 's6', `${P}/cmd/result`)).toMatchObject({ ok: true, level: 'red' });
    const again = await f.ask(`${P}/cmd/alert`, good, 's6', `${P}/cmd/result`);
    expect(again).toMatchObject({ ok: false, error: { code: 'replayed' } });
    await waitFor(() => f.sub.events('remote_refused').some((e) => e.code === 'replayed'), 3000);
    const codes = f.sub.events('remote_refused').map((e) => e.code);
    expect(codes).toEqual(expect.arrayContaining(['unsigned', 'bad_signature', 'expired', 'replayed']));
    expect(codes.filter((c) => c === 'expired')).toHaveLength(2);
  });
});
