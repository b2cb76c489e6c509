/** `dustgate doctor` on the demo config (simulator and broker running) and on four broken sites. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { loadScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { PtyPair } from '../../simulator/pty.js';
import { ROOT, startMosquitto, tempDir, type Mosquitto } from '../helpers/gateway-rig.js';
import { freePort, ntpPath, requireTool, runCommand } from '../helpers/system.js';

let sim: Simulator;
let simPort: number;
let m: Mosquitto;
let dir: string;
const dustgate = (args: string[], synced = true, lang = 'C') =>
  runCommand(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT, timeoutMs: 30_000, env: { ...process.env, PATH: ntpPath(synced), LANG: lang } });

/** seeds/sites/demo.yaml with the simulator's and broker's real ports, and changes. */
function demoConfig(name: string, change: (c: Record<string, any>) => void = () => undefined): string {
  const c = parse(readFileSync(path.join(ROOT, 'seeds/sites/demo.yaml'), 'utf8')) as Record<string, any>;
  c.buses[0].port = simPort;
  c.mqtt.url = m.url;
  c.mqtt.username = 'site-user';
  c.mqtt.password = 'right-pass';
  c.storage.path = path.join(dir, `${name}.db`);
  change(c);
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(c));
  return file;
}

beforeAll(async () => {
  requireTool('mosquitto_passwd', ['-h']);
  dir = tempDir('doctor');
  sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios/demo.yaml')), { wireTime: false });
  simPort = await freePort();
  await sim.serveTcp('127.0.0.1', simPort);
  const pw = path.join(dir, 'passwd');
  execFileSync('mosquitto_passwd', ['-b', '-c', pw, 'site-user', 'right-pass']);
  m = await startMosquitto({ dir, listeners: (port) => [`listener ${port} 127.0.0.1`, 'allow_anonymous false', `password_file ${pw}`] });
});
afterAll(async () => {
  await sim?.stop();
  await m?.stop();
});

describe('dustgate doctor', () => {
  it('passes on the demo config, one line per check', async () => {
    const r = await dustgate(['doctor', '--config', demoConfig('good')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('ok'))).toHaveLength(lines.length - 1);
    expect(r.stdout).toMatch(/^ok\s+device head\s+cwt-weather-station unit 1 answers/m);
    expect(r.stdout).toMatch(/^ok\s+broker\s+mqtt:\/\/127\.0\.0\.1:\d+ accepts/m);
    expect(r.stdout).toMatch(/all \d+ checks passed/);
    expect(r.stdout).toMatch(/^ok\s+clock\s+\S+ \(UTC\), synchronised \(timedatectl: NTPSynchronized=yes\)$/m);
  });

  it('a clock that NTP has not synchronised fails with the fix', async () => {
    const r = await dustgate(['doctor', '--config', demoConfig('unsynced')], false);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL\s+clock\s+\S+ \(UTC\) is not synchronised \(timedatectl: NTPSynchronized=no\) — turn NTP on: sudo timedatectl set-ntp true/m);
    expect(r.stdout).toMatch(/1 of \d+ checks failed/);
  });

  it.each([
    ['a missing port', (c: Record<string, any>) => (c.buses[0] = { id: 'line1', type: 'rtu', path: '/dev/ttyUSB-not-here', baudRate: 9600 }), /^FAIL\s+port line1\s+\/dev\/ttyUSB-not-here does not exist — plug in the USB adapter/m],
    ['a wrong unit id', (c: Record<string, any>) => (c.devices[0].unit = 9), /^FAIL\s+device head\s+cwt-weather-station unit 9: (exception|timeout): .* — no (device answers with unit 9|answer from unit 9).*check the unit id/m],
    ['an unreachable broker', (c: Record<string, any>) => (c.mqtt.url = 'mqtt://127.0.0.1:9'), /^FAIL\s+broker\s+mqtt:\/\/127\.0\.0\.1:9: .*ECONNREFUSED.* — nothing listens there/m],
    ['bad credentials', (c: Record<string, any>) => (c.mqtt.password = 'wrong'), /^FAIL\s+broker\s+.*Not authorized.* — the broker refuses the credentials/m],
  ])('fails with the right fix for %s', async (name, change, expected) => {
    const r = await dustgate(['doctor', '--config', demoConfig(name.replace(/\W+/g, '-'), change), '--timeout', '500']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(expected);
    expect(r.stdout).toMatch(/\d+ of \d+ checks failed/);
  });

  it('speaks Chinese with LANG=zh_CN.UTF-8 (each check and its fix) and English with LANG=C; machine names and --json stay the same', async () => {
    const file = demoConfig('zh', (c) => {
      c.devices[0].unit = 9;
      c.mqtt.password = 'wrong';
    });
    const zh = await dustgate(['doctor', '--config', file, '--timeout', '500'], false, 'zh_CN.UTF-8');
    expect(zh.code).toBe(1);
    expect(zh.stdout).toMatch(/^正常\s+配置\s+.*：网关 demo-site-0001，1 条总线，3 台设备$/m);
    expect(zh.stdout).toMatch(/^失败\s+设备 head\s+cwt-weather-station 地址 9：.* — (这个 TCP 网关后面没有地址为 9 的设备应答|地址 9 没有应答)：检查设备地址/m);
    expect(zh.stdout).toMatch(/^正常\s+设备 relays\s+waveshare-relay-8ch 地址 2 在 [\d.]+ ms 内应答/m);
    expect(zh.stdout).toMatch(/^失败\s+MQTT 服务器\s+.*Not authorized.* — MQTT 服务器拒绝了凭据：检查 mqtt\.username/m);
    expect(zh.stdout).toMatch(/^失败\s+时钟\s+\S+（UTC）未同步（timedatectl：NTPSynchronized=no） — 开启 NTP 校时：sudo timedatectl set-ntp true/m);
    expect(zh.stdout).toMatch(/^正常\s+磁盘\s+.* 剩余 \d+ MB；缓存已用/m);
    expect(zh.stdout).toMatch(/^\d+ 项检查中 3 项未通过$/m);
    // every line is Chinese apart from names and values
    for (const line of zh.stdout.trim().split('\n')) expect(line).toMatch(/[\u4e00-\u9fff]/);
    const en = await dustgate(['doctor', '--config', file, '--timeout', '500'], false, 'C');
    expect(en.stdout).toMatch(/^FAIL\s+broker\s+.*Not authorized.* — the broker refuses the credentials/m);
    expect(en.stdout).toMatch(/^3 of \d+ checks failed$/m);
    expect(en.stdout).not.toMatch(/[\u4e00-\u9fff]/);
    const json = (lang: string) => dustgate(['doctor', '--config', file, '--timeout', '500', '--json'], false, lang).then((r) => JSON.parse(r.stdout) as { name: string; ok: boolean }[]);
    const [jz, je] = [await json('zh_CN.UTF-8'), await json('C')];
    expect(jz.map((c) => [c.name, c.ok])).toEqual(je.map((c) => [c.name, c.ok]));
  });

  it('opens a Firmata board through johnny-five and says when the board does not speak StandardFirmata', async () => {
    // a real pty (socat) with nothing behind it: firmata.js opens it with the native serialport binding and gets no answer
    const pair = new PtyPair(path.join(dir, 'ttyACM-silent'));
    await pair.start();
    try {
      const file = demoConfig('silent-board', (c) => {
        c.buses.push({ id: 'io', type: 'firmata', path: pair.path });
        c.devices.push({ id: 'board', bus: 'io', driver: 'firmata-io', pins: [{ pin: 7, mode: 'relay' }] });
      });
      const r = await dustgate(['doctor', '--config', file, '--timeout', '500']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^ok\s+port io\s+.*ttyACM-silent is there/m);
      expect(r.stdout).toMatch(/^FAIL\s+device board\s+firmata-io on .*ttyACM-silent: .*no answer from StandardFirmata within 6 s — the board does not speak Firmata: upload StandardFirmata/m);
      expect(r.stdout).toMatch(/^ok\s+device head/m);
    } finally {
      await pair.stop();
    }
  });
});
