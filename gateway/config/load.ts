/**
 * Loading a site config: YAML or JSON text → preset merged under the site's `rules` → zod schema →
 * cross-references. Every problem comes back as `{path, message}` with a YAML-style path
 * (`devices[2].unit`), all of them at once.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { getDefinition } from '../../drivers/devices/index.js';
import type { DeviceDefinition } from '../../drivers/devices/types.js';
import { deepMerge } from '../deep-merge.js';
import { sprinklersOf } from '../rules/decisions.js';
import { FLOOR_SECTIONS, allowed, floorIssues, floorsOf, type Floors } from './floors.js';
import { ALERT_LEVELS, AlertProfileSchema, ConfigSchema, RulesSchema, deepPartial, platformName, type Config, type Rules } from './schema.js';

export { ConfigError, type ConfigIssue } from './errors.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { isLocale, type Locale } from '../i18n.js';

export interface Preset {
  name: string;
  title?: string;
  timezone?: string;
  /** the language of the page and of event texts for sites on this preset (zh-CN for henan-2017) */
  locale?: Locale;
  rules: Record<string, unknown>;
  cityTargets?: Record<string, unknown>;
}

export interface LoadedConfig {
  config: Config;
  /** The site config as written (before the preset and defaults): what remote patches merge into. */
  raw: Record<string, unknown>;
  /** sha256 of the file text it was read from, if any. */
  fileHash?: string;
  preset: Preset;
  /** Things that are allowed but probably not meant (printed by `config validate`, logged at start). */
  warnings: ConfigIssue[];
  timezone: string;
  /** The language of the page and of event texts: gateway.locale, else the preset's, else en. */
  locale: Locale;
  /** The regulation's floors from the preset (config/floors.ts). */
  floors: Floors;
}

/** The rules as each alert level's profile makes them (the floors hold at every level). */
export function profileRules(rules: Rules): Record<string, Rules> {
  const out: Record<string, Rules> = {};
  for (const level of ALERT_LEVELS) {
    const p = rules.alertProfiles[level];
    if (p && typeof p === 'object') out[level] = deepMerge(rules, p) as Rules;
  }
  return out;
}

/** `devices[2].unit` from ['devices', 2, 'unit']. */
export function formatPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}

function zodIssues(err: z.ZodError, prefix: readonly PropertyKey[] = []): ConfigIssue[] {
  return err.issues.flatMap((i) => {
    const p = [...prefix, ...i.path];
    if (i.code === 'unrecognized_keys')
      return i.keys.map((k) => ({ path: formatPath([...p, k]), message: `unknown key "${k}"` }));
    if (i.code === 'invalid_union' && 'errors' in i && i.errors.length) {
      // a discriminated union names the bad discriminator itself; else take the first branch's story
      return [{ path: formatPath(p), message: i.message }];
    }
    let message = i.message;
    if (i.code === 'invalid_type' && /received undefined/.test(message)) message = `required: ${message.replace(/^Invalid input: /, '')}`;
    return [{ path: formatPath(p), message }];
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
export { deepMerge } from '../deep-merge.js';

export function presetsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = path.join(dir, 'seeds', 'presets');
    if (existsSync(p)) return p;
    dir = path.dirname(dir);
  }
  return path.resolve('seeds/presets');
}

const presetCache = new Map<string, Preset>();
export function loadPreset(name: string): Preset {
  const hit = presetCache.get(name);
  if (hit) return hit;
  if (!/^[a-z0-9-]+$/.test(name)) throw new ConfigError([{ path: 'gateway.preset', message: `expected a preset name, got "${name}"` }]);
  const file = path.join(presetsDir(), `${name}.yaml`);
  if (!existsSync(file)) throw new ConfigError([{ path: 'gateway.preset', message: `no preset "${name}" (looked for ${file})` }]);
  const preset = parseYaml(readFileSync(file, 'utf8')) as Preset;
  const r = RulesSchema.safeParse(preset.rules);
  if (!r.success) throw new ConfigError(zodIssues(r.error, ['rules']), file);
  presetCache.set(name, preset);
  return preset;
}

/**
 * Parse YAML or JSON text; a syntax error names the line. A `.json` file is read as strict JSON (a
 * trailing comma is an error there, not a YAML mapping). Aliases are bounded (a "billion laughs"
 * file is an error, not a hang).
 */
export function parseConfigText(text: string, file = 'config'): unknown {
  if (/\.json$/i.test(file)) {
    try {
      return JSON.parse(text);
    } catch (e) {
      const pos = /position (\d+)/.exec((e as Error).message);
      let where = '';
      if (pos) {
        const before = text.slice(0, Number(pos[1]));
        where = `line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')}: `;
      }
      throw new ConfigError([{ path: '', message: `${where}not valid JSON: ${(e as Error).message.split('\n')[0]}` }], file);
    }
  }
  try {
    return parseYaml(text, { prettyErrors: true, maxAliasCount: 100, uniqueKeys: true });
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const pos = e.linePos?.[0];
      throw new ConfigError([{ path: '', message: `${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]}` }], file);
    }
    // the yaml library throws plain errors for resource limits (alias count)
    throw new ConfigError([{ path: '', message: `cannot be read as YAML: ${(e as Error).message.split('\n')[0]}` }], file);
  }
}

/** What a parsed value is, in words (for "expected a mapping, got …"). */
function kindOf(v: unknown): string {
  if (v === null || v === undefined) return 'an empty file';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `plain text (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  return `${typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'true/false' : typeof v}`;
}

/** Validate a parsed config (object) into the effective config. Throws ConfigError with every issue. */
export function resolveConfig(raw: unknown, file?: string): LoadedConfig {
  if (!isObj(raw)) throw new ConfigError([{ path: '', message: `expected a mapping with gateway, buses, devices, …; got ${kindOf(raw)}` }], file);
  const presetName = isObj(raw.gateway) && typeof raw.gateway.preset === 'string' ? raw.gateway.preset : 'henan-2017';
  const preset = loadPreset(presetName);
  // the site's rules are a partial override of the preset's; check their shape on their own first
  const siteRules = raw.rules ?? {};
  const partial = deepPartial(RulesSchema).safeParse(siteRules);
  const issues: ConfigIssue[] = partial.success ? [] : zodIssues(partial.error, ['rules']);
  const merged = { ...raw, rules: deepMerge(preset.rules, siteRules) };
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const seen = new Set(issues.map((i) => i.path));
    for (const i of zodIssues(parsed.error)) if (!seen.has(i.path)) issues.push(i);
  }
  if (issues.length || !parsed.success) throw new ConfigError(issues, file);
  const config = parsed.data;
  const warnings: ConfigIssue[] = [];
  const refIssues = crossCheck(config, warnings);
  // the regulation's floors: looser only with allowBelowRegulation beside the value
  const floors = floorsOf(RulesSchema.parse(preset.rules));
  refIssues.push(...floorIssues(config.rules, floors, { honourFlags: true, profiles: profileRules(config.rules) }));
  if (refIssues.length) throw new ConfigError(refIssues, file);
  for (const s of FLOOR_SECTIONS) {
    if (!allowed(config.rules, s)) continue;
    const strict = floorIssues({ ...config.rules, [s]: { ...config.rules[s], allowBelowRegulation: false } } as Rules, floors, { honourFlags: true });
    const looser = strict.filter((i) => i.path.startsWith(`rules.${s}.`));
    warnings.push({
      path: `rules.${s}.allowBelowRegulation`,
      message: looser.length ? `the site file relaxes the regulation on this box: ${looser.map((i) => i.path.replace(/^rules\./, '')).join(', ')}` : 'set, but nothing here is looser than the regulation',
    });
  }
  return { config, raw, preset, warnings, floors, timezone: config.gateway.timezone ?? preset.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone, locale: config.gateway.locale ?? (isLocale(preset.locale) ? preset.locale : 'en') };
}

export function loadConfigFile(file: string): LoadedConfig {
  if (!existsSync(file)) throw new ConfigError([{ path: '', message: `no such file (give the site config with --config FILE; examples in seeds/sites/)` }], file);
  if (statSync(file).isDirectory()) throw new ConfigError([{ path: '', message: 'is a directory: give the site config file itself (examples in seeds/sites/)' }], file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot be read: ${(e as Error).message}` }], file);
  }
  const text = decodeConfigText(bytes, file);
  const loaded = { ...resolveConfig(parseConfigText(text, file), file), fileHash: createHash('sha256').update(text).digest('hex') };
  const storage = storagePathIssue(loaded.config.storage.path);
  if (storage) throw new ConfigError([storage], file);
  return loaded;
}

/** The file's bytes as UTF-8 text, or an error saying what the file is instead. */
function decodeConfigText(bytes: Buffer, file: string): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
    throw new ConfigError([{ path: '', message: 'is UTF-16 text: save it as UTF-8 (in Notepad: Save as → Encoding UTF-8)' }], file);
  if (bytes.includes(0)) throw new ConfigError([{ path: '', message: 'is not a text file (it holds binary data): give the YAML or JSON site config' }], file);
  const text = bytes.toString('utf8');
  if (text.includes('\uFFFD')) throw new ConfigError([{ path: '', message: 'is not UTF-8 text (GBK?): save it as UTF-8' }], file);
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** Can the buffer live at `p`? A directory, or a path under a file, cannot. */
export function storagePathIssue(p: string): ConfigIssue | undefined {
  const abs = path.resolve(p);
  try {
    const st = statSync(abs);
    if (st.isDirectory()) return { path: 'storage.path', message: `${p} is a directory: name the buffer file in it (e.g. ${path.join(p, 'buffer.db')})` };
    if (!st.isFile()) return { path: 'storage.path', message: `${p} is not a regular file` };
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') return { path: 'storage.path', message: `${p}: ${(e as Error).message}` };
  }
  // not there yet: the nearest existing folder above it must be a folder
  let dir = path.dirname(abs);
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  if (!statSync(dir).isDirectory()) return { path: 'storage.path', message: `${p} cannot be made: ${dir} is a file, not a folder` };
  return undefined;
}

/** The definition a configured device uses (generic-modbus takes its map from the config). */
export function definitionOf(d: Config['devices'][number]): DeviceDefinition {
  return getDefinition(d.driver, { registers: d.registers, coils: d.coils, discreteInputs: d.discreteInputs, pins: d.pins, statusLed: d.statusLed });
}

export function metricsOf(def: DeviceDefinition): string[] {
  if (def.kind === 'modbus') return [...new Set([...def.registers.map((r) => r.metric), ...Object.keys(def.derived ?? {})])];
  return def.kind === 'frame' ? def.metrics.map((m) => m.metric) : [];
}

/** The on/off channels of a device: relay coils, discrete inputs, or Firmata pins (n = channel). */
export function channelsOf(def: DeviceDefinition): { count: number; outputs: number[]; inputs: number[] } {
  if (def.kind === 'firmata') {
    const of = (m: 'relay' | 'input') => def.pins.flatMap((p, i) => (p.mode === m ? [i + 1] : []));
    return { count: def.pins.length, outputs: of('relay'), inputs: of('input') };
  }
  const bank = def.kind === 'modbus' ? (def.coils ?? def.discreteInputs) : undefined;
  const all = bank ? Array.from({ length: bank.count }, (_, i) => i + 1) : [];
  return { count: all.length, outputs: def.kind === 'modbus' && def.coils ? all : [], inputs: def.kind === 'modbus' && !def.coils && def.discreteInputs ? all : [] };
}

export { sprinklerKind } from '../rules/decisions.js';

function crossCheck(c: Config, warnings: ConfigIssue[]): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const dup = (list: { id: string }[], where: string) => {
    const seen = new Map<string, number>();
    list.forEach((x, i) => {
      if (seen.has(x.id)) out.push({ path: `${where}[${i}].id`, message: `duplicate id "${x.id}" (also ${where}[${seen.get(x.id)}])` });
      else seen.set(x.id, i);
    });
  };
  dup(c.buses, 'buses');
  dup(c.devices, 'devices');
  const buses = new Map(c.buses.map((b) => [b.id, b]));
  const defs = new Map<string, DeviceDefinition>();
  c.devices.forEach((d, i) => {
    const bus = buses.get(d.bus);
    if (!bus) out.push({ path: `devices[${i}].bus`, message: `no bus "${d.bus}"; buses are ${[...buses.keys()].join(', ') || '(none)'}` });
    if (d.driver !== 'generic-modbus' && (d.registers || d.coils || d.discreteInputs))
      out.push({ path: `devices[${i}]`, message: `registers/coils/discreteInputs are for driver generic-modbus only (this is ${d.driver})` });
    if (d.driver !== 'firmata-io' && (d.pins || d.statusLed !== undefined))
      out.push({ path: `devices[${i}]`, message: `pins/statusLed are for driver firmata-io only (this is ${d.driver})` });
    if (d.driver === 'firmata-io') {
      if (!d.pins && d.statusLed === undefined) out.push({ path: `devices[${i}].pins`, message: 'expected a list of pins ({pin, mode: relay|input}) or a statusLed' });
      const seenPins = new Map<number, string>();
      (d.pins ?? []).forEach((p, k) => {
        if (seenPins.has(p.pin)) out.push({ path: `devices[${i}].pins[${k}].pin`, message: `pin ${p.pin} is already used by ${seenPins.get(p.pin)}` });
        else seenPins.set(p.pin, `pins[${k}]`);
        if (p.mode === 'relay' && (p.pullup !== undefined || p.activeLow !== undefined))
          out.push({ path: `devices[${i}].pins[${k}]`, message: 'pullup/activeLow are for input pins; a relay takes type NO | NC' });
        if (p.mode === 'input' && p.type !== undefined) out.push({ path: `devices[${i}].pins[${k}].type`, message: 'type NO | NC is for relay pins; an input takes pullup/activeLow' });
      });
      if (d.statusLed !== undefined && seenPins.has(d.statusLed))
        out.push({ path: `devices[${i}].statusLed`, message: `pin ${d.statusLed} is already used by ${seenPins.get(d.statusLed)}` });
    }
    let def: DeviceDefinition;
    try {
      def = definitionOf(d);
    } catch (e) {
      out.push({ path: `devices[${i}].driver`, message: (e as Error).message });
      return;
    }
    defs.set(d.id, def);
    if (bus) {
      if (def.kind === 'firmata' && bus.type !== 'firmata') out.push({ path: `devices[${i}].bus`, message: `${d.driver} drives a board running StandardFirmata: put it on a bus of type firmata, not ${bus.type}` });
      if (def.kind !== 'firmata' && bus.type === 'firmata') out.push({ path: `devices[${i}].bus`, message: `bus ${bus.id} is a firmata bus: only a firmata-io device can sit on it (this is ${d.driver})` });
      if (def.kind === 'frame' && bus.type !== 'serial') out.push({ path: `devices[${i}].bus`, message: `${d.driver} speaks its own frames: put it on a bus of type serial, not ${bus.type}` });
      if (def.kind === 'modbus' && bus.type === 'serial')
        out.push({ path: `devices[${i}].bus`, message: `${d.driver} is a Modbus device: put it on a bus of type rtu, tcp or rtu-over-tcp, not ${bus.type}` });
    }
  });
  // one board per firmata bus
  const boards = new Map<string, number>();
  c.devices.forEach((d, i) => {
    if (buses.get(d.bus)?.type !== 'firmata') return;
    if (boards.has(d.bus)) out.push({ path: `devices[${i}].bus`, message: `bus ${d.bus} already has its board (devices[${boards.get(d.bus)}]); one firmata-io device per firmata bus` });
    else boards.set(d.bus, i);
  });
  // two devices with one unit id on one bus collide
  const units = new Map<string, number>();
  c.devices.forEach((d, i) => {
    const def = defs.get(d.id);
    if (!def || def.kind !== 'modbus') return;
    const key = `${d.bus}/${d.unit ?? def.defaults.unit}`;
    if (units.has(key)) out.push({ path: `devices[${i}].unit`, message: `unit ${d.unit ?? def.defaults.unit} is already used on bus ${d.bus} by devices[${units.get(key)}]` });
    else units.set(key, i);
  });
  const channelRef = (where: string, ref: { device: string; channel: number }, bank: 'coils' | 'discreteInputs') => {
    const def = defs.get(ref.device);
    if (!def) {
      out.push({ path: `${where}.device`, message: `no device "${ref.device}"; devices are ${[...defs.keys()].join(', ') || '(none)'}` });
      return;
    }
    const ch = channelsOf(def);
    const usable = bank === 'coils' ? ch.outputs : ch.inputs;
    const what = bank === 'coils' ? 'relay outputs' : 'digital inputs';
    if (!usable.length) out.push({ path: `${where}.device`, message: `${ref.device} (${def.name}) has no ${what}` });
    else if (def.kind === 'firmata' && !usable.includes(ref.channel))
      out.push({ path: `${where}.channel`, message: `channel ${ref.channel} of ${ref.device} is ${ref.channel > ch.count ? 'not configured' : `an ${bank === 'coils' ? 'input' : 'relay'} pin`}; its ${what} are channels ${usable.join(', ')}` });
    else if (ref.channel > ch.count) out.push({ path: `${where}.channel`, message: `expected 1..${ch.count}, got ${ref.channel}` });
  };
  for (const [name, o] of Object.entries(c.outputs)) {
    channelRef(`outputs.${name}`, o, 'coils');
    if (o.kind && o.pulseMs) out.push({ path: `outputs.${name}.pulseMs`, message: 'a sprinkler output (with kind) cannot be a pulse output' });
  }
  for (const [name, o] of Object.entries(c.inputs)) channelRef(`inputs.${name}`, o, 'discreteInputs');
  const used = new Map<string, string>();
  for (const [name, o] of [...Object.entries(c.outputs), ...Object.entries(c.inputs)]) {
    const key = `${o.device}/${o.channel}`;
    if (used.has(key)) out.push({ path: `${name in c.outputs ? 'outputs' : 'inputs'}.${name}.channel`, message: `channel ${o.channel} of ${o.device} is already used by ${used.get(key)}` });
    else used.set(key, name);
  }
  for (const [metric, dev] of Object.entries(c.sources)) {
    const def = defs.get(dev as string);
    if (!def) out.push({ path: `sources.${metric}`, message: `no device "${dev}"` });
    else if (!metricsOf(def).includes(metric)) out.push({ path: `sources.${metric}`, message: `${dev} (${def.name}) does not measure ${metric}; it has ${metricsOf(def).join(', ')}` });
  }
  const r = c.rules;
  for (const m of ['pm10', 'pm25', 'tsp'] as const) {
    const l = r.dustAlarm[m];
    if (l.severe < l.warn) out.push({ path: `rules.dustAlarm.${m}.severe`, message: `expected at least warn (${l.warn}), got ${l.severe}` });
    if (l.clear > l.warn) out.push({ path: `rules.dustAlarm.${m}.clear`, message: `expected at most warn (${l.warn}), got ${l.clear}` });
  }
  for (const [level, profile] of Object.entries(r.alertProfiles)) {
    const p = AlertProfileSchema.safeParse(profile);
    if (!p.success) out.push(...zodIssues(p.error, ['rules', 'alertProfiles', level]));
  }
  r.dustAlarm.onWarn.forEach((a, i) => {
    if (a === 'spray') {
      if (!sprinklersOf(c.outputs).length) warnings.push({ path: `rules.dustAlarm.onWarn[${i}]`, message: 'no sprinkler output is configured: dust alarms will not spray' });
    } else if (!c.outputs[a]) warnings.push({ path: `rules.dustAlarm.onWarn[${i}]`, message: `no output "${a}": dust alarms will not trigger it` });
  });
  if (c.http.bind !== '127.0.0.1' && c.http.bind !== 'localhost' && c.http.bind !== '::1' && !c.http.token)
    out.push({ path: 'http.token', message: `required when http.bind is not loopback (${c.http.bind})` });
  const names = new Set<string>();
  c.hj212.forEach((p, i) => {
    if (p.enabled && (!p.host || !p.port)) out.push({ path: `hj212[${i}]`, message: 'enabled needs host and port' });
    const name = platformName(p, i);
    if (names.has(name)) out.push({ path: `hj212[${i}].name`, message: `"${name}" names two platforms: give each its own name (it keys the platform's upload queue)` });
    names.add(name);
  });
  return out;
}

const SECRET_PATHS = [
  ['mqtt', 'password'],
  ['hj212', 'pw'],
  ['http', 'token'],
  ['remote', 'hmacKey'],
] as const;

/** The config with every secret replaced by "***" (for P/config, logs and exports). */
export function redact(c: Config): Config {
  const copy = structuredClone(c) as unknown as Record<string, Record<string, unknown>>;
  for (const [section, key] of SECRET_PATHS) {
    const s = copy[section] as Record<string, unknown> | Record<string, unknown>[] | undefined;
    for (const o of Array.isArray(s) ? s : s ? [s] : []) if (typeof o[key] === 'string' && o[key] !== '') o[key] = '***';
  }
  return copy as unknown as Config;
}

/** JSON Schema for editors. The site's `rules` only override the preset, so nothing in them is required. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const strip = (n: unknown): void => {
    if (!isObj(n)) return;
    delete n.required;
    for (const v of Object.values(n)) if (isObj(v)) strip(v);
      else if (Array.isArray(v)) v.forEach(strip);
  };
  const props = schema.properties as Record<string, unknown>;
  strip(props.rules);
  schema.title = 'dustgate site config';
  if (Array.isArray(schema.required)) schema.required = (schema.required as string[]).filter((k) => k !== 'rules');
  return schema;
}
