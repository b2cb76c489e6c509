/**
 * The uplink against a mosquitto configured for TLS with client certificates and for passwords
 * (certificates made with openssl at test time): it connects with the right credentials, is refused
 * with the wrong ones while the buffer keeps everything, and no secret reaches P/config.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { redact, resolveConfig } from '../../gateway/config/load.js';
import { Store } from '../../gateway/store.js';
import { MqttUplink } from '../../gateway/uplink/mqtt.js';
import { startEmbeddedBroker } from '../../gateway/broker.js';
import { Subscriber, makePki, startMosquitto, tempDir } from '../helpers/gateway-rig.js';
import { freePort, requireTool, waitFor } from '../helpers/system.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups.length = 0;
});

function uplinkFor(mqtt: Record<string, unknown>, dir: string) {
  const loaded = resolveConfig({ gateway: { id: 'tls-site-0001' }, mqtt, storage: { path: path.join(dir, 'buffer.db') } });
  const store = new Store({ path: path.join(dir, 'buffer.db'), maxMB: 10 });
  const bodies = Array.from({ length: 5 }, (_, i) => JSON.stringify({ ts: new Date().toISOString(), device: 'head', values: { pm10: i }, flags: { pm10: 'N' } }));
  store.append('telemetry', bodies);
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (l: string) => logs.push(l) });
  const up = new MqttUplink({ mqtt: loaded.config.mqtt, gatewayId: 'tls-site-0001', store, logger, version: 'test', startedAt: new Date().toISOString() });
  cleanups.push(async () => {
    await up.stop();
    store.close();
  });
  up.publishConfig({ ...redact(loaded.config), version: 1 });
  return { up, store, logs, config: loaded.config };
}

describe('MQTT uplink security (mosquitto)', () => {
  it('TLS with a client certificate: connects, delivers, and P/config carries no secret', async () => {
    const dir = tempDir('tls');
    const pki = makePki(dir);
    const m = await startMosquitto({
      dir,
      listeners: (port) => [`listener ${port} 127.0.0.1`, `cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true', 'allow_anonymous true'],
    });
    cleanups.push(() => m.stop());
    const url = `mqtts://127.0.0.1:${m.port}`;
    const sub = await Subscriber.connect(url, 'dustgate/#', { ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) });
    cleanups.push(() => sub.close());
    const { up, store } = uplinkFor({ url, ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, password: 'not-needed-but-secret' }, dir);
    up.start();
    await waitFor(() => sub.readings().length === 5, 10_000);
    await waitFor(() => store.depth === 0, 5000);
    const cfg = sub.on('config').at(-1)!;
    expect(cfg.retain).toBe(false); // live delivery; the broker keeps it retained for later subscribers
    expect(JSON.stringify(cfg.payload)).not.toContain('not-needed-but-secret');
    expect((cfg.payload as { mqtt: { password: string } }).mqtt.password).toBe('***');
    expect(sub.on('status').at(-1)!.payload.state).toBe('online');
  });

  it('without a client certificate the broker refuses the connection', async () => {
    const dir = tempDir('tls-nocert');
    const pki = makePki(dir);
    const m = await startMosquitto({
      dir,
      listeners: (port) => [`listener ${port} 127.0.0.1`, `cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true', 'allow_anonymous true'],
    });
    cleanups.push(() => m.stop());
    const { up, store, logs } = uplinkFor({ url: `mqtts://127.0.0.1:${m.port}`, ca: pki.ca }, dir);
    up.start();
    await waitFor(() => logs.some((l) => /"level":40/.test(l)), 10_000);
    expect(up.connected).toBe(false);
    expect(store.depth).toBe(5);
  });

  it('username/password: the wrong password is refused and the buffer kept; the right one delivers; the password is never logged', async () => {
    requireTool('mosquitto_passwd', ['-h']);
    const dir = tempDir('passwd');
    const pw = path.join(dir, 'passwd');
    execFileSync('mosquitto_passwd', ['-b', '-c', pw, 'site-user', 'right-pass']);
    const m = await startMosquitto({ dir, listeners: (port) => [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${pw}`] });
    cleanups.push(() => m.stop());
    const wrong = uplinkFor({ url: m.url, username: 'site-user', password: 'wrong-pass' }, tempDir('passwd-wrong'));
    wrong.up.start();
    await waitFor(() => wrong.logs.some((l) => /Not authorized|Bad username or password/i.test(l)), 10_000);
    expect(wrong.up.connected).toBe(false);
    expect(wrong.store.depth).toBe(5);
    const sub = await Subscriber.connect(m.url, 'dustgate/#', { username: 'site-user', password: 'right-pass' });
    cleanups.push(() => sub.close());
    const right = uplinkFor({ url: m.url, username: 'site-user', password: 'right-pass' }, tempDir('passwd-right'));
    right.up.start();
    await waitFor(() => sub.readings().length === 5, 10_000);
    for (const l of [...wrong.logs, ...right.logs]) expect(l).not.toMatch(/right-pass|wrong-pass/);
  });

  it('a broker that refuses the first CONNACKs (restarting, auth backend not up) lets the gateway in on a later try, and nothing is lost', async () => {
    const broker = await startEmbeddedBroker('127.0.0.1', await freePort());
    cleanups.push(() => broker.stop());
    const tries: string[] = [];
    broker.broker.authenticate = (client, _u, _p, cb) => {
      if (!client.id.startsWith('dustgate-')) return cb(null, true);
      tries.push(client.id);
      if (tries.length === 1) return cb(Object.assign(new Error('auth backend starting'), { returnCode: 3 }), false); // server unavailable
      if (tries.length === 2) return cb(null, false); // not authorized
      cb(null, true);
    };
    const url = `mqtt://127.0.0.1:${broker.port}`;
    const sub = await Subscriber.connect(url);
    cleanups.push(() => sub.close());
    const { up, store } = uplinkFor({ url }, tempDir('refused-connack'));
    up.start();
    await waitFor(() => sub.readings().length === 5, 20_000);
    expect(tries.length).toBe(3);
    expect(up.counters.connects).toBe(1);
    await waitFor(() => store.depth === 0, 5000);
  });

  it('an unreadable certificate file is a clear error naming the key', async () => {
    const dir = tempDir('badpem');
    const port = await freePort();
    const { up } = uplinkFor({ url: `mqtts://127.0.0.1:${port}`, ca: path.join(dir, 'missing-ca.pem') }, dir);
    expect(() => up.start()).toThrow(/mqtt\.ca: cannot read .*missing-ca\.pem \(ENOENT\)/);
  });
});
