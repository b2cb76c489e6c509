/**
 * Bus scan: which unit ids answer on a line, at which baud rate, and which built-in driver each one
 * is. Many RS-485 sensors answer any address (with zeros), so "it answered the driver's registers"
 * proves little: every candidate driver's reads are made and weighed (docs/drivers.md, "How scan
 * tells devices apart"): values inside the metric catalog's ranges and not all zero, relations a
 * real device keeps (a wind level that matches the wind speed, PM2.5 ≤ PM10 ≤ TSP), the vendor's
 * identification register, and, only on functions where the device refuses unknown addresses, the
 * registers it has. The best candidate is named when it wins clearly; otherwise the candidates are
 * listed, and a unit nothing explains is `unknown`, with what it answered.
 */
import { Bus, type BusConfig } from '../drivers/bus.js';
import { BUILTIN_DRIVERS } from '../drivers/devices/index.js';
import { decodeBlocks, planReads, type ReadBlock } from '../drivers/devices/registers.js';
import type { ModbusDeviceDefinition, Values } from '../drivers/devices/types.js';
import { isDriverError } from '../drivers/errors.js';
import { defaultRanges, physicalRanges } from './metrics.js';
import { has, t } from './i18n.js';

type Say = (key: string, p?: Record<string, unknown>) => string;
/** The words of the scan's findings (the CLI's language; English by default). */
let say: Say = (k, p) => t('en', k, p);

export interface Found {
  baudRate?: number;
  unit: number;
  /** the driver, or `unknown` (nothing explains the answers, or several drivers do: see `candidates`) */
  driver: string | 'unknown';
  /** when the reads cannot tell two or more drivers apart: them, the likeliest first */
  candidates?: string[];
  /** what answered, for unknown devices; the values read, for known ones */
  detail: string;
}

/** Candidate maps. */
const CANDIDATES: ModbusDeviceDefinition[] = Object.values(BUILTIN_DRIVERS).filter((d): d is ModbusDeviceDefinition => d.kind === 'modbus' && d.name !== 'generic-modbus');

type Fn = 1 | 2 | 3 | 4;
interface Read {
  fn: Fn;
  address: number;
  count: number;
}
/** An answer: the words or bits, or why not. */
type Answer = { ok: true; data: number[] } | { ok: false; why: string };

const hex = (n: number) => `0x${n.toString(16).padStart(4, '0').toUpperCase()}`;
const fcName = (fn: number) => `FC${String(fn).padStart(2, '0')}`;

/** One unit's answers, each request made once however many candidates need it. */
class UnitReader {
  private readonly cache = new Map<string, Promise<Answer>>();
  constructor(
    private readonly bus: Bus,
    readonly unit: number,
    private readonly timeoutMs: number,
  ) {}

  read(r: Read): Promise<Answer> {
    const key = `${r.fn}:${r.address}:${r.count}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.bus.modbus(this.unit, { fn: r.fn, address: r.address, count: r.count }, this.timeoutMs).then(
        (res): Answer => ({ ok: true, data: res.fn === 1 || res.fn === 2 ? res.bits.map((b) => (b ? 1 : 0)) : res.fn === 3 || res.fn === 4 ? res.registers : [] }),
        (e): Answer => {
          if (isDriverError(e) && e.code === 'exception') return { ok: false, why: `exception ${String(e.context.exceptionCode)}` };
          if (isDriverError(e)) return { ok: false, why: e.code };
          throw e;
        },
      );
      this.cache.set(key, p);
    }
    return p;
  }
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
      return `${fcName(req.fn)}@${hex(req.address)} answered`;
    } catch (e) {
      if (isDriverError(e) && e.code === 'exception') return `exception ${String(e.context.exceptionCode)} to ${fcName(req.fn)}@${hex(req.address)}`;
      if (isDriverError(e) && (e.code === 'crc' || e.code === 'garbage' || e.code === 'short_frame')) return `${e.code} (a device at another baud rate or parity?)`;
      if (!isDriverError(e) || e.code !== 'timeout') throw e;
      if (req.fn === 3) return undefined; // nothing answered the most common request: nobody home
    }
  }
  return undefined;
}

/** Addresses no built-in map uses: a device that answers them answers anything on that function. */
const LOOSE_PROBES: Read[] = [
  { fn: 3, address: 0x2bad, count: 2 },
  { fn: 4, address: 0x2bad, count: 2 },
  { fn: 1, address: 0x0123, count: 8 },
  { fn: 2, address: 0x0123, count: 8 },
];

/** What one candidate's reads say. */
export interface Evidence {
  driver: string;
  /** a reason the device cannot be this driver, if any */
  excluded?: string;
  /** for every read: function, address, count, and whether the device refuses unknown addresses on that function */
  reads: (Read & { strict: boolean })[];
  values: Values;
  /** the unit id register read back the unit's own address */
  unitIdMatch?: boolean;
  /** the scan's baud rate is the driver's default */
  defaultBaud?: boolean;
}

/** The weight of each kind of evidence (docs/drivers.md). */
export const WEIGHTS = { strictAnswer: 1, usualValue: 1, unusualValue: -1, extraValue: 0.5, bitsSet: 1, relation: 2, unitId: 3, defaultBaud: 0.5, clearMargin: 1 } as const;

/** The score of one candidate (undefined: excluded); `evidence` is what counts without the baud-rate hint. */
export function score(def: ModbusDeviceDefinition, e: Evidence): { score: number; evidence: number; why: string[] } | undefined {
  if (e.excluded) return undefined;
  const phys = physicalRanges();
  const usual = defaultRanges();
  const extra = def.identify?.ranges ?? {};
  let s = 0;
  const why: string[] = [];
  if (e.reads.length && e.reads.every((r) => r.strict)) {
    s += WEIGHTS.strictAnswer;
    why.push(say('scan.why.strict'));
  }
  for (const [k, v] of Object.entries(e.values)) {
    if (/^ch\d+$/.test(k)) continue;
    if (extra[k]) {
      if (v < extra[k][0] || v > extra[k][1]) return undefined;
      if (v !== 0) s += WEIGHTS.extraValue;
      continue;
    }
    const p = phys[k];
    if (!p) continue;
    if (!Number.isFinite(v) || v < p[0] || v > p[1]) return undefined;
    if (v === 0) continue;
    const u = usual[k]!;
    s += v >= u[0] && v <= u[1] ? WEIGHTS.usualValue : WEIGHTS.unusualValue;
  }
  if (Object.entries(e.values).some(([k, v]) => /^ch\d+$/.test(k) && v)) {
    s += WEIGHTS.bitsSet;
    why.push(say('scan.why.channels'));
  }
  for (const rel of def.identify?.relations ?? []) {
    const ok = rel.check(e.values);
    if (ok === false) return undefined;
    if (ok) {
      s += WEIGHTS.relation;
      why.push(has('en', `scan.rel.${rel.id}`) ? say(`scan.rel.${rel.id}`) : rel.name);
    }
  }
  if (e.unitIdMatch) {
    s += WEIGHTS.unitId;
    why.push(say('scan.why.unitId', { address: hex(def.identify!.unitIdRegister!.address) }));
  }
  return { score: s + (e.defaultBaud ? WEIGHTS.defaultBaud : 0), evidence: s, why };
}

/** Weigh every candidate's evidence: a name, a list of candidates, or nothing. */
export function decide(evidence: Evidence[]): { driver?: string; candidates?: string[]; why?: string[] } {
  const byName = new Map(CANDIDATES.map((d) => [d.name, d]));
  // on functions where the device refuses unknown addresses, a map the device answers beyond is not this device
  const strictSet = (e: Evidence) => new Set(e.reads.flatMap((r) => Array.from({ length: r.count }, (_, i) => `${r.fn}:${r.address + i}`)));
  const answered = evidence.filter((e) => !e.excluded && e.reads.length && e.reads.every((r) => r.strict));
  const scored = evidence
    .filter((e) => {
      if (e.excluded || !e.reads.every((r) => r.strict)) return true;
      const mine = strictSet(e);
      return !answered.some((o) => o !== e && o.reads.every((r) => r.strict) && strictSet(o).size > mine.size && [...mine].every((a) => strictSet(o).has(a)));
    })
    .map((e) => ({ e, r: score(byName.get(e.driver)!, e) }))
    .filter((x): x is { e: Evidence; r: NonNullable<ReturnType<typeof score>> } => x.r !== undefined && x.r.evidence > 0)
    .sort((a, b) => b.r.score - a.r.score);
  if (!scored.length) return {};
  const [best, second] = scored;
  if (!second || best!.r.score - second.r.score >= WEIGHTS.clearMargin) return { driver: best!.e.driver, why: best!.r.why };
  return { candidates: scored.filter((x) => best!.r.score - x.r.score < WEIGHTS.clearMargin).map((x) => x.e.driver), why: best!.r.why };
}

function readsOf(def: ModbusDeviceDefinition): { blocks: ReadBlock[]; banks: Read[] } {
  const banks = [def.coils, def.discreteInputs].filter((b) => b !== undefined).map((b) => ({ fn: b.fn, address: b.address, count: b.count }) as Read);
  return { blocks: planReads(def.registers), banks };
}

async function gather(reader: UnitReader, baud: number | undefined): Promise<{ evidence: Evidence[]; loose: Map<Fn, Answer> }> {
  const loose = new Map<Fn, Answer>();
  for (const p of LOOSE_PROBES) loose.set(p.fn, await reader.read(p));
  const strict = (fn: Fn) => !loose.get(fn)!.ok;
  const evidence: Evidence[] = [];
  for (const def of CANDIDATES) {
    const { blocks, banks } = readsOf(def);
    const e: Evidence = { driver: def.name, reads: [...blocks, ...banks].map((r) => ({ ...r, strict: strict(r.fn) })), values: {}, ...(baud !== undefined ? { defaultBaud: def.defaults.baudRate === baud } : {}) };
    const words: { block: ReadBlock; words: number[] }[] = [];
    for (const b of blocks) {
      const a = await reader.read(b);
      if (!a.ok) {
        e.excluded = `${fcName(b.fn)}@${hex(b.address)}: ${a.why}`;
        break;
      }
      words.push({ block: b, words: a.data });
    }
    if (!e.excluded) Object.assign(e.values, decodeBlocks(def.registers, words));
    for (const b of e.excluded ? [] : banks) {
      const a = await reader.read(b);
      if (!a.ok) {
        e.excluded = `${fcName(b.fn)}@${hex(b.address)}: ${a.why}`;
        break;
      }
      a.data.forEach((bit, i) => (e.values[`ch${i + 1}`] = bit));
    }
    const id = def.identify?.unitIdRegister;
    if (!e.excluded && id) {
      const a = await reader.read({ fn: id.fn, address: id.address, count: 1 });
      e.unitIdMatch = a.ok && a.data[0] === reader.unit;
    }
    evidence.push(e);
  }
  return { evidence, loose };
}

/** What a unit answered, in a line: for a unit no driver explains. */
function answered(evidence: Evidence[], loose: Map<Fn, Answer>): string {
  const parts: string[] = [];
  for (const fn of [3, 4, 1, 2] as Fn[]) {
    const l = loose.get(fn)!;
    const read = evidence.filter((e) => !e.excluded && e.reads.some((r) => r.fn === fn));
    const nonzero = read.flatMap((e) => Object.entries(e.values).filter(([, v]) => v !== 0).map(([k, v]) => `${e.driver}: ${k}=${v}`));
    if (l.ok) parts.push(nonzero.length ? say('scan.answers.values', { values: nonzero.slice(0, 2).join(', ') }) : say('scan.answers.zeros'));
    else parts.push(say('scan.answers.refuses', { why: l.why }));
  }
  // the four functions in one phrase when they say the same
  if (parts.every((p) => p === parts[0])) return `FC01–FC04: ${parts[0]}`;
  return parts.map((p, i) => `${fcName([3, 4, 1, 2][i]!)}: ${p}`).join('; ');
}

const shown = (values: Values) =>
  Object.entries(values)
    .filter(([k]) => !k.startsWith('ch') || Number(k.slice(2)) <= 8)
    .slice(0, 6)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

async function identify(bus: Bus, unit: number, baud: number | undefined, timeoutMs: number): Promise<Omit<Found, 'unit' | 'baudRate'>> {
  const { evidence, loose } = await gather(new UnitReader(bus, unit, timeoutMs), baud);
  const d = decide(evidence);
  if (d.driver) {
    const e = evidence.find((x) => x.driver === d.driver)!;
    return { driver: d.driver, detail: [shown(e.values), d.why?.length ? `(${d.why.join('; ')})` : ''].filter(Boolean).join(' ') };
  }
  if (d.candidates) return { driver: 'unknown', candidates: d.candidates, detail: say('scan.ambiguous', { why: [...(d.why ?? []), answered(evidence, loose)].join('; ') }) };
  return { driver: 'unknown', detail: answered(evidence, loose) };
}

export interface ScanOptions {
  bus: BusConfig;
  baudRates?: number[];
  units: number[];
  timeoutMs: number;
  onProgress?: (done: number, total: number) => void;
  /** the language of the findings (a catalog lookup) */
  say?: Say;
  binding?: ConstructorParameters<typeof Bus>[1] extends infer O ? (O extends { binding?: infer B } ? B : never) : never;
}

export async function scanBus(o: ScanOptions): Promise<Found[]> {
  if (o.say) say = o.say;
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
        if (what) found.push({ ...(baud !== undefined ? { baudRate: baud } : {}), unit, ...(await identify(bus, unit, baud, o.timeoutMs)) });
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
export function devicesBlock(found: Found[], bus: BusConfig, say: (key: string, p?: Record<string, unknown>) => string = (k, p) => t('en', k, p)): string {
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
    const where = `unit ${f.unit}${f.baudRate ? ` at ${f.baudRate} baud` : ''}`;
    if (f.candidates) {
      // never a guess that would run: each candidate commented out, to keep one after a look at the label
      lines.push(`  # ${where}: ${say('scan.candidates', { list: f.candidates.join(', ') })}`);
      for (const c of f.candidates) lines.push(`  # - { id: ${SHORT[c] ?? c}${f.unit}, bus: ${ids.get(f.baudRate)}, unit: ${f.unit}, driver: ${c}, pollMs: ${c === 'waveshare-di-8ch' ? 200 : 1000} }`);
      continue;
    }
    if (f.driver === 'unknown') {
      lines.push(`  # ${where}: ${say('scan.unknown', { detail: f.detail })}`);
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
export function parseUnits(s: string, say: Say = (k, p) => t('en', k, p)): number[] {
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(say('usage.units', { got: s }));
    const a = Number(m[1]);
    const b = Number(m[2] ?? m[1]);
    if (a < 1 || b > 247 || a > b) throw new Error(say('usage.unitsRange', { got: part }));
    for (let u = a; u <= b; u++) out.add(u);
  }
  return [...out];
}
