/**
 * Scenario files: which virtual devices exist, how each metric moves over time, and which faults
 * hit which device when. Values are pure functions of scenario time, so a run is reproducible.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DRIVER_NAMES } from '../drivers/devices/index.js';

const num = z.number();
export const ValueSpecSchema = z.union([
  num,
  z
    .object({
      const: num.optional(),
      ramp: z.strictObject({ from: num, to: num, startS: num.default(0), endS: num }).optional(),
      /** Sine on scenario time. */
      sine: z.strictObject({ mean: num, amplitude: num, periodS: num.positive(), phaseS: num.default(0) }).optional(),
      /** A day on the wall clock (local time): minimum before dawn, maximum at `peakHour`. */
      daily: z.strictObject({ min: num, max: num, peakHour: num.min(0).max(24).default(14) }).optional(),
      /** [secondFromStart, value] pairs; the value holds until the next step. */
      steps: z.array(z.tuple([num, num])).min(1).optional(),
      noise: z.strictObject({ sd: num.nonnegative(), seed: z.number().int().optional() }).optional(),
      min: num.optional(),
      max: num.optional(),
    })
    .strict()
    .refine((v) => [v.const, v.ramp, v.sine, v.daily, v.steps].filter((x) => x !== undefined).length <= 1, {
      message: 'give at most one of const, ramp, sine, daily, steps',
    }),
]);
export type ValueSpec = z.infer<typeof ValueSpecSchema>;

export const FAULT_PATTERN = /^(timeout|crc-error|garbage|short-frame|disconnect|exception:\d{1,3}|slow:\d+)$/;
export const FaultSchema = z.string().regex(FAULT_PATTERN, 'expected timeout | crc-error | exception:<code> | garbage | short-frame | slow:<ms> | disconnect');

export const ScenarioSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  seed: z.number().int().default(1),
  devices: z
    .array(
      z.strictObject({
        id: z.string().min(1),
        driver: z.enum(DRIVER_NAMES as [string, ...string[]]),
        unit: z.number().int().min(1).max(247).optional(),
        /** Which simulated line (serial endpoint) the device sits on. */
        line: z.string().default('main'),
        /** Baud rate of the line for wire-time emulation (default: the driver's). */
        baudRate: z.number().int().positive().optional(),
        /** generic-modbus only: the register map, as in the site config. */
        registers: z.array(z.record(z.string(), z.unknown())).optional(),
        coils: z.number().int().optional(),
        discreteInputs: z.number().int().optional(),
        /** firmata-io only: the board's pins, as in the site config (channel n is pins[n-1]). */
        pins: z
          .array(
            z.strictObject({
              pin: z.number().int().min(0).max(127),
              mode: z.enum(['relay', 'input']),
              type: z.enum(['NO', 'NC']).optional(),
              pullup: z.boolean().optional(),
              activeLow: z.boolean().optional(),
            }),
          )
          .optional(),
        statusLed: z.number().int().min(0).max(127).optional(),
        /**
         * How the device answers a read outside its map: `exception` (code 2, illegal address; the
         * default), `zeros` (any address of any read function, as many cheap RS-485 sensors do), or
         * `own-functions` (zeros at any address of the functions it has, exception 1 for the others).
         */
        unmapped: z.enum(['exception', 'zeros', 'own-functions']).default('exception'),
        values: z.record(z.string(), ValueSpecSchema).default({}),
      }),
    )
    .min(1),
  faults: z
    .array(
      z.strictObject({
        device: z.string(),
        fault: FaultSchema,
        fromS: z.number().nonnegative().default(0),
        toS: z.number().positive().optional(),
      }),
    )
    .default([]),
});
export type Scenario = z.infer<typeof ScenarioSchema>;
export type ScenarioInput = z.input<typeof ScenarioSchema>;

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
}

export function parseScenario(input: unknown, source = 'scenario'): Scenario {
  const r = ScenarioSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const path = i.path.map((p, k) => (typeof p === 'number' ? `[${p}]` : k ? `.${String(p)}` : String(p))).join('');
    throw new ScenarioError(`${source}: ${path || '(root)'}: ${i.message}`);
  }
  const ids = new Set<string>();
  for (const d of r.data.devices) {
    if (ids.has(d.id)) throw new ScenarioError(`${source}: devices: duplicate id "${d.id}"`);
    ids.add(d.id);
  }
  for (const f of r.data.faults) if (!ids.has(f.device)) throw new ScenarioError(`${source}: faults: unknown device "${f.device}"`);
  return r.data;
}

export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ScenarioError(`cannot read scenario ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new ScenarioError(`${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseScenario(data, file);
}

// ------------------------------------------------------------------ evaluation

function hash32(...parts: (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    const s = String(p);
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h ^= 0x7c;
  }
  return h >>> 0;
}

/** Deterministic standard-normal sample for (seed, key, whole second). */
export function gaussian(seed: number, key: string, second: number): number {
  const u1 = (hash32(seed, key, second, 'a') + 1) / 4294967297;
  const u2 = (hash32(seed, key, second, 'b') + 1) / 4294967297;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Value of `spec` at scenario time `t` (seconds) and wall-clock time `wallMs`. */
export function evaluate(spec: ValueSpec, t: number, wallMs: number, seed: number, key: string): number {
  if (typeof spec === 'number') return spec;
  let v = spec.const ?? 0;
  if (spec.ramp) {
    const { from, to, startS, endS } = spec.ramp;
    const f = endS <= startS ? 1 : Math.min(1, Math.max(0, (t - startS) / (endS - startS)));
    v = from + (to - from) * f;
  } else if (spec.sine) {
    const { mean, amplitude, periodS, phaseS } = spec.sine;
    v = mean + amplitude * Math.sin((2 * Math.PI * (t + phaseS)) / periodS);
  } else if (spec.daily) {
    const { min, max, peakHour } = spec.daily;
    const d = new Date(wallMs);
    const hour = d.getHours() + d.getMinutes() / 60 + d.getSeconds() / 3600;
    v = min + ((max - min) * (1 + Math.cos((2 * Math.PI * (hour - peakHour)) / 24))) / 2;
  } else if (spec.steps) {
    const sorted = [...spec.steps].sort((a, b) => a[0] - b[0]);
    v = sorted[0]![1];
    for (const [at, val] of sorted) if (t >= at) v = val;
  }
  if (spec.noise && spec.noise.sd > 0) v += spec.noise.sd * gaussian(spec.noise.seed ?? seed, key, Math.floor(t));
  if (spec.min !== undefined) v = Math.max(spec.min, v);
  if (spec.max !== undefined) v = Math.min(spec.max, v);
  return v;
}
