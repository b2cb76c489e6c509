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
import { probeClockSync } from './clock-sync.js';
import { ConfigError, definitionOf, loadConfigFile } from './config/load.js';
import { FirmataBus, FirmataDevice } from '../drivers/firmata.js';
import { platformName, type Config } from './config/schema.js';
import { t, type Locale, type MessageKey } from './i18n.js';
import { pageLinks } from './lan.js';

export interface Check {
  /** what was checked, machine-readable (`device head`, `broker`): never translated */
  name: string;
  /** the same for people, in the doctor's language */
  label: string;
  ok: boolean;
  detail: string;
  fix?: string;
  /** a URL worth a QR code in the terminal (the page on the LAN) */
  url?: string;
}

/** The doctor's language (set per run). */
let locale: Locale = 'en';
const T = (key: MessageKey | (string & {}), p?: Record<string, unknown>) => t(locale, `doctor.${key}`, p);
/** A check: its machine name, and its label from the catalog. */
function check(kind: string, id: string | undefined, c: Omit<Check, 'name' | 'label'>): Check {
  return { name: id === undefined ? kind : `${kind} ${id}`, label: T(`name.${kind}`, { id }), ...c };
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
      out.push(check('port', b.id, { ok: false, detail: T('port.missing', { path: b.path }), fix: T('port.missing.fix') }));
      continue;
    }
    try {
      accessSync(b.path, constants.R_OK | constants.W_OK);
      out.push(check('port', b.id, { ok: true, detail: T('port.ok', { path: b.path }) }));
    } catch {
      const user = os.userInfo().username;
      out.push(check('port', b.id, { ok: false, detail: T('port.denied', { path: b.path, user }), fix: inGroup('dialout') ? T('port.denied.fix.perm') : T('port.denied.fix.dialout', { user }) }));
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
        out.push(check('bus', id, { ok: false, detail: T('bus.fail', { address: bus.line.address, error: (e as Error).message }), fix: T('bus.fix') }));
      }
    }
    for (const d of c.devices) {
      if (d.driver === 'firmata-io') {
        out.push(await boardCheck(c, d, timeoutMs));
        continue;
      }
      const bus = buses.get(d.bus);
      if (!bus || bus.line.state !== 'open') {
        out.push(check('device', d.id, { ok: false, detail: T('device.notTried', { bus: d.bus }) }));
        continue;
      }
      const client = new DeviceClient(bus, definitionOf(d), { id: d.id, unit: d.unit, timeoutMs: d.timeoutMs ?? timeoutMs });
      try {
        const values = await client.read();
        const shown = Object.entries(values)
          .slice(0, 5)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        out.push(check('device', d.id, { ok: true, detail: T('device.ok', { driver: d.driver, unit: client.unit, ms: client.counters.lastRttMs, values: shown }) }));
      } catch (e) {
        const code = isDriverError(e) ? e.code : 'error';
        const ex = isDriverError(e) ? e.context.exceptionCode : undefined;
        const fix =
          code === 'exception' && (ex === 10 || ex === 11)
            ? 'device.fix.gateway'
            : code === 'timeout'
              ? 'device.fix.timeout'
              : code === 'crc' || code === 'garbage'
                ? 'device.fix.garbled'
                : code === 'exception'
                  ? 'device.fix.exception'
                  : 'device.fix.other';
        out.push(check('device', d.id, { ok: false, detail: T('device.fail', { driver: d.driver, unit: client.unit, code, error: (e as Error).message }), fix: T(fix, { unit: client.unit, driver: d.driver }) }));
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
  if (!b || b.type !== 'firmata') return check('device', d.id, { ok: false, detail: T('board.notFirmataBus', { bus: d.bus }) });
  const def = definitionOf(d);
  if (def.kind !== 'firmata') return check('device', d.id, { ok: false, detail: T('board.notFirmata') });
  // an Uno resets when its port opens and needs ~2 s before StandardFirmata answers
  const readyMs = Math.max(timeoutMs * 2, 6000);
  const bus = new FirmataBus(b, { readyTimeoutMs: readyMs });
  const dev = new FirmataDevice(bus, def, { id: d.id, timeoutMs: d.timeoutMs ?? timeoutMs });
  try {
    await bus.start();
    if (!bus.isOpen) {
      const msg = bus.lastOpenError?.message ?? 'no answer';
      return check('device', d.id, { ok: false, detail: T('board.fail', { path: b.path, error: msg }), fix: T(/StandardFirmata/.test(msg) ? 'board.fix.firmware' : 'board.fix.port') });
    }
    const values = await dev.read();
    const shown = Object.entries(values)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return check('device', d.id, { ok: true, detail: T('board.ok', { path: b.path, n: def.pins.length, values: shown }) });
  } catch (e) {
    return check('device', d.id, { ok: false, detail: T('board.fail', { path: b.path, error: (e as Error).message }), fix: T('board.fix.wiring') });
  } finally {
    await bus.stop();
  }
}

async function brokerCheck(c: Config, timeoutMs: number): Promise<Check> {
  const m = c.mqtt;
  if (!m.enabled) return check('broker', undefined, { ok: true, detail: T('broker.disabled') });
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
    return check('broker', undefined, { ok: true, detail: T('broker.ok', { url: m.url }) });
  } catch (e) {
    const msg = (e as Error).message.replace(/\s+/g, ' ');
    const fix = /Not authorized|Bad user/i.test(msg)
      ? 'broker.fix.auth'
      : /ECONNREFUSED/.test(msg)
        ? 'broker.fix.refused'
        : /ENOTFOUND|EAI_AGAIN/.test(msg)
          ? 'broker.fix.dns'
          : /certificate|alert|self.signed|ENOENT/i.test(msg)
            ? 'broker.fix.tls'
            : 'broker.fix.other';
    return check('broker', undefined, { ok: false, detail: T('broker.fail', { url: m.url, error: msg }), fix: T(fix) });
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
  if (new Date().getUTCFullYear() < 2025) return check('clock', undefined, { ok: false, detail: T('clock.early', { now }), fix: T('clock.fix') });
  if (sync.synced === true) return check('clock', undefined, { ok: true, detail: T('clock.ok', { now, source: sync.source, detail: sync.detail }) });
  return check('clock', undefined, {
    ok: false,
    detail: sync.synced === false ? T('clock.unsynced', { now, source: sync.source, detail: sync.detail }) : T('clock.unknown', { now, detail: sync.detail }),
    fix: T('clock.fix'),
  });
}

/** Where a phone opens the page (with its QR code), or how to open it to the site's network. */
function pageCheck(c: Config, file: string): Check {
  const link = pageLinks(c.http);
  if (!link.lan) return check('page', undefined, { ok: true, detail: T('page.local', { url: link.urls[0], file }) });
  if (!link.urls.length) return check('page', undefined, { ok: true, detail: T('page.noAddress', { bind: c.http.bind }) });
  return check('page', undefined, { ok: true, detail: T('page.lan', { url: link.urls[0] }), url: link.urls[0] });
}

export async function runDoctor(file: string, o: { timeoutMs?: number; locale?: Locale } = {}): Promise<Check[]> {
  const timeoutMs = o.timeoutMs ?? 3000;
  locale = o.locale ?? 'en';
  const checks: Check[] = [];
  let c: Config;
  try {
    const loaded = loadConfigFile(file);
    c = loaded.config;
    const warnings = loaded.warnings.length ? T('config.warnings', { list: loaded.warnings.map((w) => `${w.path}: ${w.message}`).join('; ') }) : '';
    checks.push(check('config', undefined, { ok: true, detail: T('config.ok', { file, id: c.gateway.id, buses: c.buses.length, devices: c.devices.length }) + warnings }));
  } catch (e) {
    const detail = e instanceof ConfigError ? e.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ') : (e as Error).message;
    checks.push(check('config', undefined, { ok: false, detail, fix: T('config.fix', { file }) }));
    return checks;
  }
  checks.push(pageCheck(c, file));
  checks.push(...(await serialChecks(c)));
  checks.push(...(await deviceChecks(c, timeoutMs)));
  checks.push(await brokerCheck(c, timeoutMs));
  for (const [i, p] of c.hj212.entries()) {
    if (!p.enabled) continue;
    const err = await tcpCheck(p.host, p.port, timeoutMs);
    const where = { host: p.host, port: p.port };
    const name = platformName(p, i);
    const id = c.hj212.length > 1 ? name : undefined;
    checks.push(err ? check('hj212', id, { ok: false, detail: T('hj212.fail', { ...where, error: err }), fix: T('hj212.fix') }) : check('hj212', id, { ok: true, detail: T('hj212.ok', where) }));
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
        ? check('disk', undefined, { ok: true, detail: T('disk.ok', { free: fmt(freeMB), dir: probe, used: fmt(usedMB), cap: c.storage.maxMB }) })
        : check('disk', undefined, {
            ok: false,
            detail: T('disk.low', { free: fmt(freeMB), dir: probe, used: fmt(usedMB), cap: c.storage.maxMB, need: fmt(needMB) }),
            fix: T('disk.low.fix', { max: Math.max(0.25, Math.floor((freeMB + usedMB - 0.5) * 10) / 10) }),
          }),
    );
  } catch (e) {
    checks.push(check('disk', undefined, { ok: false, detail: `${probe}: ${(e as Error).message}`, fix: T('disk.fail.fix') }));
  }
  return checks;
}
