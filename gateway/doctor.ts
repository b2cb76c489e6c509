/**
 * `dustgate doctor`: every check an installer needs before leaving a site, one line each with the
 * fix: config, serial ports and permissions, each device answering, the broker with its TLS and
 * credentials, the HJ 212 platform, the clock, and disk room for the buffer.
 */
import { accessSync, constants, existsSync, readFileSync, statSync, statfsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Bus } from '../drivers/bus.js';
import { DeviceClient } from '../drivers/device.js';
import { isDriverError } from '../drivers/errors.js';
import { probeClockSync, SYNC_FIX } from './clock-sync.js';
import { ConfigError, definitionOf, loadConfigFile } from './config/load.js';
import { FirmataBus, FirmataDevice } from '../drivers/firmata.js';
import type { Config } from './config/schema.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

function inGroup(group: string): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const line = readFileSync('/etc/group', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${group}:`));
    if (!line) return false;
    const gid = Number(line.split(':')[2]);
    const members = (line.split(':')[3] ?? '').split(',');
    return (process.getgroups?.() ?? []).includes(gid) || members.includes(os.userInfo().username);
  } catch {
    return false;
  }
}

async function serialChecks(c: Config): Promise<Check[]> {
  const out: Check[] = [];
  for (const b of c.buses) {
    if (b.type !== 'rtu' && b.type !== 'serial' && b.type !== 'firmata') continue;
    if (!existsSync(b.path)) {
      out.push({ name: `port ${b.id}`, ok: false, detail: `${b.path} does not exist`, fix: 'plug in the USB adapter and check its name: ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/' });
      continue;
    }
    try {
      accessSync(b.path, constants.R_OK | constants.W_OK);
      out.push({ name: `port ${b.id}`, ok: true, detail: `${b.path} is there and can be opened for reading and writing` });
    } catch {
      out.push({
        name: `port ${b.id}`,
        ok: false,
        detail: `${b.path}: permission denied for user ${os.userInfo().username}`,
        fix: inGroup('dialout') ? 'check the device node\'s permissions (ls -l)' : `add the user to group dialout: sudo usermod -aG dialout ${os.userInfo().username} (then log in again)`,
      });
    }
  }
  return out;
}

async function deviceChecks(c: Config, timeoutMs: number): Promise<Check[]> {
  const out: Check[] = [];
  const buses = new Map<string, Bus>();
  for (const b of c.buses) if (b.type !== 'firmata') buses.set(b.id, new Bus(b, { reopenMaxMs: 1000 }));
  try {
    for (const [id, bus] of buses) {
      try {
        await bus.line.openOnce();
      } catch (e) {
        out.push({ name: `bus ${id}`, ok: false, detail: `cannot open ${bus.line.address}: ${(e as Error).message}`, fix: 'check the path or host:port of the bus, and that no other program holds it (a running gateway?)' });
      }
    }
    for (const d of c.devices) {
      if (d.driver === 'firmata-io') {
        out.push(await boardCheck(c, d, timeoutMs));
        continue;
      }
      const bus = buses.get(d.bus);
      if (!bus || bus.line.state !== 'open') {
        out.push({ name: `device ${d.id}`, ok: false, detail: `not tried: bus ${d.bus} is not open` });
        continue;
      }
      const client = new DeviceClient(bus, definitionOf(d), { id: d.id, unit: d.unit, timeoutMs: d.timeoutMs ?? timeoutMs });
      try {
        const values = await client.read();
        const shown = Object.entries(values)
          .slice(0, 5)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        out.push({ name: `device ${d.id}`, ok: true, detail: `${d.driver} unit ${client.unit} answers in ${client.counters.lastRttMs} ms: ${shown}` });
      } catch (e) {
        const code = isDriverError(e) ? e.code : 'error';
        const ex = isDriverError(e) ? e.context.exceptionCode : undefined;
        const fix =
          code === 'exception' && (ex === 10 || ex === 11)
            ? `no device answers with unit ${client.unit} behind this TCP gateway: check the unit id; \`dustgate scan\` finds what is on the line`
            :
          code === 'timeout'
            ? `no answer from unit ${client.unit}: check the unit id, wiring (A/B), baud rate and parity; \`dustgate scan\` finds what is on the line`
            : code === 'crc' || code === 'garbage'
              ? 'garbled answers: check baud rate, parity, termination and that nothing else polls the line'
              : code === 'exception'
                ? `the device refused the request: check that unit ${client.unit} really is a ${d.driver}`
                : 'check the bus';
        out.push({ name: `device ${d.id}`, ok: false, detail: `${d.driver} unit ${client.unit}: ${code}: ${(e as Error).message}`, fix });
      }
    }
  } finally {
    for (const b of buses.values()) await b.stop();
  }
  return out;
}

/** A Firmata board: open it through johnny-five, wait for StandardFirmata, read every pin once. */
async function boardCheck(c: Config, d: Config['devices'][number], timeoutMs: number): Promise<Check> {
  const b = c.buses.find((x) => x.id === d.bus);
  if (!b || b.type !== 'firmata') return { name: `device ${d.id}`, ok: false, detail: `not tried: bus ${d.bus} is not a firmata bus` };
  const def = definitionOf(d);
  if (def.kind !== 'firmata') return { name: `device ${d.id}`, ok: false, detail: 'not a firmata-io device' };
  // an Uno resets when its port opens and needs ~2 s before StandardFirmata answers
  const readyMs = Math.max(timeoutMs * 2, 6000);
  const bus = new FirmataBus(b, { readyTimeoutMs: readyMs });
  const dev = new FirmataDevice(bus, def, { id: d.id, timeoutMs: d.timeoutMs ?? timeoutMs });
  try {
    await bus.start();
    if (!bus.isOpen) {
      const msg = bus.lastOpenError?.message ?? 'no answer';
      return {
        name: `device ${d.id}`,
        ok: false,
        detail: `firmata-io on ${b.path}: ${msg}`,
        fix: /StandardFirmata/.test(msg)
          ? 'the board does not speak Firmata: upload StandardFirmata to it (Arduino IDE: File → Examples → Firmata → StandardFirmata)'
          : 'check the board is plugged in and that no other program (a running gateway, the Arduino IDE) holds the port',
      };
    }
    const values = await dev.read();
    const shown = Object.entries(values)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return { name: `device ${d.id}`, ok: true, detail: `firmata-io on ${b.path}: StandardFirmata ready, ${def.pins.length} pins: ${shown}` };
  } catch (e) {
    return { name: `device ${d.id}`, ok: false, detail: `firmata-io on ${b.path}: ${(e as Error).message}`, fix: 'check the wiring of the configured pins and the board\'s firmware (StandardFirmata)' };
  } finally {
    await bus.stop();
  }
}

async function brokerCheck(c: Config, timeoutMs: number): Promise<Check> {
  const m = c.mqtt;
  if (!m.enabled) return { name: 'broker', ok: true, detail: 'mqtt.enabled is false: no uplink' };
  const mqtt = (await import('mqtt')).default;
  try {
    const read = (f: string) => (f ? readFileSync(f) : undefined);
    const client = await mqtt.connectAsync(m.url, {
      clientId: `dustgate-doctor-${process.pid}`,
      reconnectPeriod: 0,
      connectTimeout: timeoutMs,
      ...(m.username ? { username: m.username, password: m.password } : {}),
      ca: read(m.ca),
      cert: read(m.cert),
      key: read(m.key),
    });
    await client.endAsync();
    return { name: 'broker', ok: true, detail: `${m.url} accepts the gateway's credentials` };
  } catch (e) {
    const msg = (e as Error).message.replace(/\s+/g, ' ');
    const fix = /Not authorized|Bad user/i.test(msg)
      ? 'the broker refuses the credentials: check mqtt.username / mqtt.password (or the client certificate)'
      : /ECONNREFUSED/.test(msg)
        ? 'nothing listens there: check mqtt.url (host and port) and that the broker runs'
        : /ENOTFOUND|EAI_AGAIN/.test(msg)
          ? 'the host name does not resolve: check mqtt.url and DNS'
          : /certificate|alert|self.signed|ENOENT/i.test(msg)
            ? 'TLS failed: check mqtt.ca, mqtt.cert and mqtt.key, and that the broker name matches its certificate'
            : 'check mqtt.url, the network and the firewall';
    return { name: 'broker', ok: false, detail: `${m.url}: ${msg}`, fix };
  }
}

function tcpCheck(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(`no connection in ${timeoutMs} ms`);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      resolve(e.message);
    });
  });
}

/** The clock: NTP-synchronised (asked of timedatectl, chronyc or timesyncd), and not before 2025. */
async function clockCheck(): Promise<Check> {
  const now = new Date().toISOString();
  const sync = await probeClockSync();
  if (new Date().getUTCFullYear() < 2025) return { name: 'clock', ok: false, detail: `the clock says ${now}`, fix: SYNC_FIX };
  if (sync.synced === true) return { name: 'clock', ok: true, detail: `${now} (UTC), synchronised (${sync.source}: ${sync.detail})` };
  return {
    name: 'clock',
    ok: false,
    detail: sync.synced === false ? `${now} (UTC) is not synchronised (${sync.source}: ${sync.detail})` : `${now} (UTC): cannot tell whether it is synchronised (${sync.detail})`,
    fix: SYNC_FIX,
  };
}

export async function runDoctor(file: string, o: { timeoutMs?: number } = {}): Promise<Check[]> {
  const timeoutMs = o.timeoutMs ?? 3000;
  const checks: Check[] = [];
  let c: Config;
  try {
    const loaded = loadConfigFile(file);
    c = loaded.config;
    checks.push({ name: 'config', ok: true, detail: `${file}: gateway ${c.gateway.id}, ${c.buses.length} buses, ${c.devices.length} devices${loaded.warnings.length ? `; warnings: ${loaded.warnings.map((w) => `${w.path}: ${w.message}`).join('; ')}` : ''}` });
  } catch (e) {
    const detail = e instanceof ConfigError ? e.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ') : (e as Error).message;
    checks.push({ name: 'config', ok: false, detail, fix: `fix the config (dustgate config validate ${file} lists every problem)` });
    return checks;
  }
  checks.push(...(await serialChecks(c)));
  checks.push(...(await deviceChecks(c, timeoutMs)));
  checks.push(await brokerCheck(c, timeoutMs));
  if (c.hj212.enabled) {
    const err = await tcpCheck(c.hj212.host, c.hj212.port, timeoutMs);
    checks.push(err ? { name: 'hj212', ok: false, detail: `${c.hj212.host}:${c.hj212.port}: ${err}`, fix: 'check hj212.host and hj212.port with the platform operator, and the firewall' } : { name: 'hj212', ok: true, detail: `${c.hj212.host}:${c.hj212.port} accepts connections` });
  }
  checks.push(await clockCheck());
  const dir = path.dirname(path.resolve(c.storage.path));
  let probe = dir;
  while (!existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
  try {
    const st = statfsSync(probe);
    const freeMB = (st.bavail * st.bsize) / 1048576;
    // the cap bounds the database and its WAL together; what they hold now is already on the disk
    let usedMB = 0;
    for (const suffix of ['', '-wal', '-shm', '.reserve'])
      try {
        const f = statSync(c.storage.path + suffix);
        if (f.isDirectory()) throw Object.assign(new Error(`${c.storage.path} is a directory`), { code: 'EISDIR' });
        usedMB += f.size / 1048576;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    const needMB = c.storage.maxMB + 0.5; // + the reserve file and the WAL index
    const fmt = (mb: number) => (mb >= 10 ? String(Math.round(mb)) : mb.toFixed(2));
    checks.push(
      freeMB + usedMB >= needMB
        ? { name: 'disk', ok: true, detail: `${fmt(freeMB)} MB free at ${probe}; the buffer holds ${fmt(usedMB)} MB (database, WAL) of its ${c.storage.maxMB} MB cap` }
        : {
            name: 'disk',
            ok: false,
            detail: `${fmt(freeMB)} MB free at ${probe} and ${fmt(usedMB)} MB in the buffer: the buffer's cap (storage.maxMB ${c.storage.maxMB}, database and WAL together) needs ${fmt(needMB)} MB`,
            fix: `free space, or set storage.maxMB to at most ${Math.max(0.25, Math.floor((freeMB + usedMB - 0.5) * 10) / 10)}`,
          },
    );
  } catch (e) {
    checks.push({ name: 'disk', ok: false, detail: `${probe}: ${(e as Error).message}`, fix: 'check storage.path' });
  }
  return checks;
}
