/**
 * The smaller defects of issue "Safety under faults", each with its test: Modbus TCP replies from
 * the wrong unit or transaction, short frames counted as such on /metrics, a deeply nested remote
 * body, __proto__ patches, unbounded config lists, and config files that are not what they claim.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import { Bus } from '../../drivers/bus.js';
import { DeviceClient } from '../../drivers/device.js';
import { getDefinition } from '../../drivers/devices/index.js';
import { ConfigError, loadConfigFile, resolveConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { JUNE_10AM, ROOT, siteConfig, startInProcess, tempDir, type InProcessRig } from '../helpers/gateway-rig.js';
import { freePort, runCommand, waitFor } from '../helpers/system.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop().catch(() => undefined);
  rig = undefined;
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  cleanups.length = 0;
});

/**
 * A Modbus TCP far end that answers FC03 with the register values asked for, bent by `mode`:
 * 'unit' answers as another unit, 'tid' with another transaction id, 'short' cuts the reply.
 */
async function bentServer(mode: 'unit' | 'tid' | 'short' | 'good'): Promise<number> {
  const port = await freePort();
  const server = net.createServer((s) =>
    s.on('data', (req) => {
      const tid = req.readUInt16BE(0);
      const unit = req[6]!;
      const count = req.readUInt16BE(10);
      const pdu = Buffer.alloc(2 + count * 2);
      pdu[0] = 3;
      pdu[1] = count * 2;
      for (let i = 0; i < count; i++) pdu.writeUInt16BE(100 + i, 2 + i * 2);
      const head = Buffer.alloc(7);
      head.writeUInt16BE(mode === 'tid' ? (tid + 7) & 0xffff : tid, 0);
      head.writeUInt16BE(0, 2);
      head.writeUInt16BE(pdu.length + 1, 4);
      head[6] = mode === 'unit' ? unit + 1 : unit;
      const frame = Buffer.concat([head, pdu]);
      s.write(mode === 'short' ? frame.subarray(0, frame.length - 3) : frame);
    }),
  );
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return port;
}

async function readOnce(port: number): Promise<{ code?: string; counters: DeviceClient['counters'] }> {
  const bus = new Bus({ id: 'eth', type: 'tcp', host: '127.0.0.1', port, timeoutMs: 200 });
  await bus.start();
  const dev = new DeviceClient(bus, getDefinition('dust-transmitter'), { id: 'dust', unit: 4 });
  let code: string | undefined;
  try {
    await dev.read();
  } catch (e) {
    code = (e as { code?: string }).code;
  }
  await bus.stop();
  return { code, counters: dev.counters };
}

describe('Modbus TCP replies that are not the answer', () => {
  it('a reply from another unit is garbage, not data; another transaction id is garbage, not a short frame; a cut reply is a short frame', async () => {
    expect((await readOnce(await bentServer('good'))).code).toBeUndefined();
    const unit = await readOnce(await bentServer('unit'));
    expect(unit.code).toBe('garbage');
    expect(unit.counters).toMatchObject({ garbage: 1, ok: 0 });
    const tid = await readOnce(await bentServer('tid'));
    expect(tid.code).toBe('garbage');
    expect(tid.counters).toMatchObject({ garbage: 1, shortFrames: 0 });
    const short = await readOnce(await bentServer('short'));
    expect(short.code).toBe('short_frame');
    expect(short.counters).toMatchObject({ garbage: 0, shortFrames: 1 });
  });

  it('/metrics counts short frames on their own, not as garbage', async () => {
    const port = await bentServer('short');
    const dir = tempDir('metrics');
    const cfg = siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port, timeoutMs: 200 }, mqttUrl: `mqtt://127.0.0.1:${await freePort()}`, dir, pollMs: 300 });
    const gw = new Gateway({ loaded: resolveConfig({ ...cfg, devices: [cfg.devices[0]], outputs: {}, inputs: {}, rules: { dustAlarm: { onWarn: [] } } }), logger: pino({ level: 'silent' }) });
    cleanups.push(() => gw.stop());
    await gw.start();
    await waitFor(() => gw.devices.get('head')!.counters.shortFrames >= 2, 5000);
    const text = await (await fetch(`http://127.0.0.1:${gw.http!.port}/metrics`)).text();
    expect(text).toMatch(/dustgate_device_short_frames_total\{device="head"\} [1-9]/);
    expect(text).toMatch(/dustgate_device_garbage_total\{device="head"\} 0/);
  });
});

describe('remote messages that are not what they claim', () => {
  it('a body nested 100,000 levels deep gets a result and a remote_refused event', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    const deep = `{"requestId":"deep-1","output":"sprinkler","state":"on","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    await r.sub.client.publishAsync('dustgate/test-site-0001/cmd/output', deep, { qos: 1 });
    const res = await waitFor(() => r.sub.on('cmd/result').find((m) => m.payload.requestId === 'deep-1'), 10_000);
    expect(res.payload).toMatchObject({ ok: false, error: { code: expect.stringMatching(/too_deep|malformed/) } });
    await waitFor(() => r.sub.events('remote_refused').some((e) => e.requestId === 'deep-1'), 5000);
    const cfg = `{"requestId":"deep-2","patch":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`;
    await r.sub.client.publishAsync('dustgate/test-site-0001/config/set', cfg, { qos: 1 });
    const res2 = await waitFor(() => r.sub.on('config/result').find((m) => m.payload.requestId === 'deep-2'), 10_000);
    expect(res2.payload).toMatchObject({ ok: false });
  });

  it('__proto__ in a patch is an unknown key: refused, nothing changes, no new version', async () => {
    const gw = new Gateway({ loaded: resolveConfig(siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port: 1502 }, mqttUrl: 'mqtt://127.0.0.1:1', dir: tempDir('proto') })), logger: pino({ level: 'silent' }), http: false });
    const v = gw.version;
    for (const text of ['{"mqtt":{"__proto__":{"maxBatch":7}}}', '{"__proto__":{"mqtt":{"maxBatch":7}}}']) {
      const res = await gw.applyConfig({ patch: JSON.parse(text) }, { source: 'remote' });
      expect(res.ok).toBe(false);
      expect(res.errors![0]!.message).toMatch(/unknown key "__proto__"/);
    }
    expect(gw.config.mqtt.maxBatch).toBe(500);
    expect(({} as { maxBatch?: number }).maxBatch).toBeUndefined();
    expect(gw.version).toBe(v);
    gw.store.close();
  });

  it('config lists have a size limit: a 100,000-entry onWarn is refused with its path', () => {
    const c = siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port: 1502 }, mqttUrl: 'mqtt://127.0.0.1:1', dir: tempDir('lists') });
    expect(() => resolveConfig({ ...c, rules: { dustAlarm: { onWarn: Array.from({ length: 100_000 }, () => 'spray') } } })).toThrow(/rules\.dustAlarm\.onWarn: expected at most 16 entries/);
  });
});

describe('config files that are not what they claim', () => {
  const dir = tempDir('badfiles');
  const good = siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port: 1502 }, mqttUrl: 'mqtt://127.0.0.1:1', dir });
  const issue = (file: string) => {
    try {
      loadConfigFile(file);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).issues[0]!;
    }
    throw new Error(`${file} was accepted`);
  };
  const put = (name: string, data: string | Buffer) => {
    const f = path.join(dir, name);
    writeFileSync(f, data);
    return f;
  };

  it.each([
    ['a YAML alias bomb', () => put('bomb.yaml', `a: &a ["x","x","x","x","x","x","x","x","x"]\n${Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`).join('\n')}\n`), /cannot be read as YAML: .*alias/i],
    ['a directory', () => (mkdirSync(path.join(dir, 'site.d'), { recursive: true }), path.join(dir, 'site.d')), /is a directory/],
    ['a top-level list', () => put('list.yaml', '- gateway: {id: abc}\n'), /got a list/],
    ['a binary file', () => put('bin.yaml', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3])), /not a text file/],
    ['UTF-16 text', () => put('u16.yaml', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('gateway:\n  id: abc-1\n', 'utf16le')])), /UTF-16.*save it as UTF-8/],
    ['JSON with a trailing comma', () => put('comma.json', JSON.stringify(good).replace(/}$/, ',}')), /line 1, column \d+: not valid JSON/],
    ['plain text', () => put('text.yaml', 'hello there\n'), /expected a mapping .* got plain text/],
  ])('%s: one clear error', (_name, make, message) => {
    const i = issue(make());
    expect(i.message).toMatch(message);
  });

  it.each([
    ['a directory', () => (mkdirSync(path.join(dir, 'data.d'), { recursive: true }), path.join(dir, 'data.d')), /is a directory: name the buffer file in it/],
    ['under a file', () => path.join(put('plain-file', 'x'), 'buffer.db'), /cannot be made: .* is a file, not a folder/],
  ])('storage.path that is %s: refused by config validate with its path', async (_name, make, message) => {
    const file = put(`storage-${Math.random().toString(36).slice(2)}.json`, JSON.stringify({ ...good, storage: { path: make() } }));
    const i = issue(file);
    expect(i.path).toBe('storage.path');
    expect(i.message).toMatch(message);
    const out = await runCommand(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', 'config', 'validate', file], { cwd: ROOT });
    expect(out.code).toBe(1);
    expect(out.stderr + out.stdout).toMatch(/storage\.path/);
  });
});
