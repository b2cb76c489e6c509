/**
 * Bus scan: which unit ids answer on a line, at which baud rate, and which built-in driver each one
 * is, told by reading every register block of each candidate map (a device that does not have a
 * register answers with an exception) and by how plausible the decoded values are.
 */
import { Bus, type BusConfig } from '../drivers/bus.js';
import { DeviceClient } from '../drivers/device.js';
import { BUILTIN_DRIVERS } from '../drivers/devices/index.js';
import { planReads } from '../drivers/devices/registers.js';
import type { ModbusDeviceDefinition } from '../drivers/devices/types.js';
import { isDriverError } from '../drivers/errors.js';
import { flagValues } from './reading.js';

export interface Found {
  baudRate?: number;
  unit: number;
  driver: string | 'unknown';
  /** what answered, for unknown devices; the values read, for known ones */
  detail: string;
}

/** Candidate maps, the most specific first (more registers, then more banks). */
const CANDIDATES: ModbusDeviceDefinition[] = Object.values(BUILTIN_DRIVERS)
  .filter((d): d is ModbusDeviceDefinition => d.kind === 'modbus')
  .sort((a, b) => size(b) - size(a));

function size(d: ModbusDeviceDefinition): number {
  return planReads(d.registers).reduce((n, r) => n + r.count, 0) * 10 + (d.coils ? 1 : 0) + (d.discreteInputs ? 1 : 0);
}

/** Is something at `unit`? Any answer counts, an exception too. */
async function present(bus: Bus, unit: number, timeoutMs: number): Promise<string | undefined> {
  for (const req of [
    { fn: 3 as const, address: 0, count: 1 },
    { fn: 4 as const, address: 1, count: 1 },
    { fn: 1 as const, address: 0, count: 1 },
  ]) {
    try {
      await bus.modbus(unit, req, timeoutMs);
      return `FC${String(req.fn).padStart(2, '0')}@0x${req.address.toString(16).padStart(4, '0')} answered`;
    } catch (e) {
      if (isDriverError(e) && e.code === 'exception') return `exception ${String(e.context.exceptionCode)} to FC${String(req.fn).padStart(2, '0')}@0x${req.address.toString(16).padStart(4, '0')}`;
      if (isDriverError(e) && (e.code === 'crc' || e.code === 'garbage' || e.code === 'short_frame')) return `${e.code} (a device at another baud rate or parity?)`;
      if (!isDriverError(e) || e.code !== 'timeout') throw e;
      if (req.fn === 3) return undefined; // nothing answered the most common request: nobody home
    }
  }
  return undefined;
}

async function identify(bus: Bus, unit: number, timeoutMs: number): Promise<{ driver: string; detail: string } | undefined> {
  let best: { driver: string; detail: string; score: number } | undefined;
  for (const def of CANDIDATES) {
    const client = new DeviceClient(bus, def, { id: 'scan', unit, timeoutMs });
    try {
      const values = await client.read();
      const flags = flagValues(values);
      const metrics = Object.keys(values).filter((k) => !k.startsWith('ch'));
      const normal = metrics.filter((k) => flags[k] === 'N').length;
      // every register answered; prefer the map whose values all make sense, then the biggest map
      const score = (metrics.length ? normal / metrics.length : 1) * 1000 + size(def);
      if (!best || score > best.score) {
        const shown = Object.entries(values)
          .filter(([k]) => !k.startsWith('ch') || Number(k.slice(2)) <= 8)
          .slice(0, 6)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        best = { driver: def.name, detail: shown, score };
      }
    } catch {
      /* not this map */
    }
  }
  return best && { driver: best.driver, detail: best.detail };
}

export interface ScanOptions {
  bus: BusConfig;
  baudRates?: number[];
  units: number[];
  timeoutMs: number;
  onProgress?: (done: number, total: number) => void;
  binding?: ConstructorParameters<typeof Bus>[1] extends infer O ? (O extends { binding?: infer B } ? B : never) : never;
}

export async function scanBus(o: ScanOptions): Promise<Found[]> {
  const bauds = o.bus.type === 'tcp' ? [undefined] : (o.baudRates ?? [9600]);
  const total = bauds.length * o.units.length;
  let done = 0;
  const found: Found[] = [];
  for (const baud of bauds) {
    const cfg = (baud === undefined ? o.bus : { ...o.bus, baudRate: baud }) as BusConfig;
    const bus = new Bus(cfg, { binding: o.binding, reopenMaxMs: 500 });
    await bus.line.openOnce();
    try {
      for (const unit of o.units) {
        const what = await present(bus, unit, o.timeoutMs);
        if (what) {
          const id = await identify(bus, unit, o.timeoutMs);
          found.push({ ...(baud !== undefined ? { baudRate: baud } : {}), unit, driver: id?.driver ?? 'unknown', detail: id?.detail ?? what });
        }
        o.onProgress?.(++done, total);
      }
    } finally {
      await bus.stop();
    }
  }
  return found;
}

/** Device ids an installer would pick. */
const SHORT: Record<string, string> = {
  'cwt-weather-station': 'head',
  'waveshare-relay-8ch': 'relays',
  'waveshare-di-8ch': 'dio',
  'xy-md02': 'th',
  'renke-wind-speed': 'wind',
  'renke-wind-direction': 'vane',
  'noise-transmitter': 'noise',
  'dust-transmitter': 'dust',
};

/** A ready-to-paste `buses:` + `devices:` block for what was found. */
export function devicesBlock(found: Found[], bus: BusConfig): string {
  const lines: string[] = ['buses:'];
  const byBaud = new Map<number | undefined, Found[]>();
  for (const f of found) byBaud.set(f.baudRate, [...(byBaud.get(f.baudRate) ?? []), f]);
  const ids = new Map<number | undefined, string>();
  let n = 0;
  for (const baud of byBaud.keys()) {
    const id = `line${++n}`;
    ids.set(baud, id);
    if (bus.type === 'tcp' || bus.type === 'rtu-over-tcp') lines.push(`  - { id: ${id}, type: ${bus.type}, host: ${bus.host}, port: ${bus.port}${baud ? `, baudRate: ${baud}` : ''} }`);
    else lines.push(`  - { id: ${id}, type: rtu, path: ${(bus as { path: string }).path}, baudRate: ${baud ?? 9600}, parity: ${(bus as { parity?: string }).parity ?? 'none'} }`);
  }
  lines.push('devices:');
  const used = new Map<string, number>();
  for (const f of found) {
    if (f.driver === 'unknown') {
      lines.push(`  # unit ${f.unit}${f.baudRate ? ` at ${f.baudRate} baud` : ''}: unknown device (${f.detail}); describe it with driver generic-modbus`);
      continue;
    }
    const k = (used.get(f.driver) ?? 0) + 1;
    used.set(f.driver, k);
    const name = SHORT[f.driver] ?? f.driver;
    lines.push(`  - { id: ${k > 1 ? `${name}${k}` : name}, bus: ${ids.get(f.baudRate)}, unit: ${f.unit}, driver: ${f.driver}, pollMs: ${f.driver === 'waveshare-di-8ch' ? 200 : 1000} }`);
  }
  return `${lines.join('\n')}\n`;
}

/** "1-10,20" → [1..10, 20] within 1..247. */
export function parseUnits(s: string): number[] {
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`--units: expected a range like 1-10,20, got "${s}"`);
    const a = Number(m[1]);
    const b = Number(m[2] ?? m[1]);
    if (a < 1 || b > 247 || a > b) throw new Error(`--units: expected ids within 1..247, got "${part}"`);
    for (let u = a; u <= b; u++) out.add(u);
  }
  return [...out];
}
