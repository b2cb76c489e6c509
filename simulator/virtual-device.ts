/**
 * A virtual device built from a driver definition: the same register map the gateway decodes
 * is encoded here, so map and simulator cannot disagree. Values come from the scenario, from
 * run-time overrides (control API), or from the gateway's own writes (relay coils).
 */
import { getDefinition } from '../drivers/devices/index.js';
import { channelMetric } from '../drivers/devices/helpers.js';
import { decodeRegister, encodeRegister, wordsOf } from '../drivers/devices/registers.js';
import type { DeviceDefinition, Values } from '../drivers/devices/types.js';
import type { DeviceParams } from '../drivers/devices/index.js';
import { encodeException, encodeResponse, type ModbusRequest } from '../drivers/modbus/pdu.js';
import { evaluate, type ValueSpec } from './scenario.js';
import { parseFault, type Fault } from './faults.js';

export interface TimedFault {
  fault: Fault;
  name: string;
  /** Scenario seconds. */
  fromS: number;
  toS?: number;
}

export interface VirtualDeviceOptions {
  id: string;
  driver: string;
  unit?: number;
  line?: string;
  baudRate?: number;
  /** Configured drivers: generic-modbus's map, firmata-io's pins. */
  generic?: DeviceParams;
  values?: Record<string, ValueSpec>;
  seed?: number;
  /** How reads outside the map are answered (scenario `unmapped`). */
  unmapped?: 'exception' | 'zeros' | 'own-functions';
}

export class VirtualDevice {
  readonly id: string;
  readonly definition: DeviceDefinition;
  readonly unit: number;
  readonly line: string;
  readonly baudRate: number;
  private readonly specs: Record<string, ValueSpec>;
  private readonly seed: number;
  /** Set through the control API or written by the gateway (coils); win over the scenario. */
  readonly overrides: Values = {};
  faults: TimedFault[] = [];
  readonly stats = { requests: 0, replies: 0, faultsInjected: 0, writes: 0 };
  /** Coil writes that changed a relay, in scenario seconds (the last 10,000): what the gateway really switched. */
  readonly coilLog: { t: number; channel: number; on: boolean }[] = [];

  constructor(o: VirtualDeviceOptions) {
    this.id = o.id;
    this.definition = getDefinition(o.driver, o.generic);
    this.unit = o.unit ?? this.definition.defaults.unit ?? 1;
    this.line = o.line ?? 'main';
    this.baudRate = o.baudRate ?? this.definition.defaults.baudRate;
    this.specs = o.values ?? {};
    this.seed = o.seed ?? 1;
    this.unmapped = o.unmapped ?? 'exception';
  }

  private readonly unmapped: 'exception' | 'zeros' | 'own-functions';

  /** The answer to a read outside the map: an exception, or zeros (see `unmapped`). */
  private outside(fn: 1 | 2 | 3 | 4, count: number, has: boolean): Buffer {
    if (this.unmapped === 'zeros' || (this.unmapped === 'own-functions' && has)) {
      return fn === 1 || fn === 2 ? encodeResponse({ fn, bits: new Array<boolean>(count).fill(false) }) : encodeResponse({ fn, registers: new Array<number>(count).fill(0) });
    }
    return encodeException(fn, this.unmapped === 'own-functions' ? 1 : 2);
  }

  /** Every metric and channel this device exposes. */
  metricNames(): string[] {
    const d = this.definition;
    if (d.kind === 'frame') return d.metrics.map((m) => m.metric);
    if (d.kind === 'firmata') return d.pins.map((_, i) => channelMetric(i + 1));
    const names = d.registers.map((r) => r.metric);
    const bank = d.coils ?? d.discreteInputs;
    if (bank) for (let i = 1; i <= bank.count; i++) names.push(channelMetric(i));
    return names;
  }

  value(metric: string, t: number, wallMs: number): number {
    if (metric in this.overrides) return this.overrides[metric]!;
    const spec = this.specs[metric];
    if (spec !== undefined) return evaluate(spec, t, wallMs, this.seed, `${this.id}.${metric}`);
    const derive = this.definition.kind === 'modbus' ? this.definition.derived?.[metric] : undefined;
    if (derive) {
      const inputs: Values = {};
      for (const m of this.metricNames()) if (m !== metric) inputs[m] = this.value(m, t, wallMs);
      return derive(inputs);
    }
    return 0;
  }

  values(t: number, wallMs: number): Values {
    const out: Values = {};
    for (const m of this.metricNames()) out[m] = this.value(m, t, wallMs);
    return out;
  }

  /** Faults active at scenario time t. */
  activeFaults(t: number): Fault[] {
    return this.faults.filter((f) => t >= f.fromS && (f.toS === undefined || t < f.toS)).map((f) => f.fault);
  }

  addFault(name: string, fromS: number, toS?: number): void {
    this.faults.push({ fault: parseFault(name), name, fromS, toS });
  }

  /** A relay channel written by the gateway (a coil, a Firmata relay pin): kept, and logged if it changed. */
  switchChannel(ch: number, on: boolean, t: number): void {
    if ((this.overrides[channelMetric(ch)] ?? 0) !== (on ? 1 : 0)) {
      this.coilLog.push({ t, channel: ch, on });
      if (this.coilLog.length > 10_000) this.coilLog.shift();
    }
    this.overrides[channelMetric(ch)] = on ? 1 : 0;
  }

  /** Answer a Modbus request: the reply PDU (normal or exception). */
  handleModbus(req: ModbusRequest, t: number, wallMs: number): Buffer {
    const d = this.definition;
    if (d.kind !== 'modbus') return encodeException(req.fn, 1);
    switch (req.fn) {
      case 3:
      case 4: {
        const regs = d.registers.filter((r) => r.fn === req.fn);
        const extras = req.fn === 3 ? d.identify?.simulatorExtras : undefined;
        const extra = extras?.[req.address];
        if (extra !== undefined && req.count === 1) return encodeResponse({ fn: 3, registers: [extra === 'unit' ? this.unit : extra] });
        const words = new Array<number>(req.count).fill(0);
        let hit = false;
        for (const r of regs) {
          const off = r.address - req.address;
          const n = wordsOf(r.type);
          if (off < 0 || off + n > req.count) continue;
          hit = true;
          encodeRegister(r, this.value(r.metric, t, wallMs)).forEach((w, i) => (words[off + i] = w));
        }
        // like real devices: a range that reaches past the device's register span is an illegal address
        // (gaps inside the span read as 0, as the CWT head's 0x01F6 does)
        const lo = Math.min(...regs.map((r) => r.address));
        const hi = Math.max(...regs.map((r) => r.address + wordsOf(r.type) - 1));
        if (!hit || req.address < lo || req.address + req.count - 1 > hi) return this.outside(req.fn, req.count, regs.length > 0 || extras !== undefined);
        return encodeResponse({ fn: req.fn, registers: words });
      }
      case 1:
      case 2: {
        const bank = req.fn === 1 ? d.coils : d.discreteInputs;
        if (!bank || req.address < bank.address || req.address + req.count > bank.address + bank.count) return this.outside(req.fn, req.count, bank !== undefined);
        const bits: boolean[] = [];
        for (let i = 0; i < req.count; i++) bits.push(this.value(channelMetric(req.address - bank.address + i + 1), t, wallMs) !== 0);
        return encodeResponse({ fn: req.fn, bits });
      }
      case 5:
      case 15: {
        const bank = d.coils;
        const values = req.fn === 5 ? [req.value] : req.values;
        if (!bank || req.address < bank.address || req.address + values.length > bank.address + bank.count) return encodeException(req.fn, 2);
        values.forEach((v, i) => this.switchChannel(req.address - bank.address + i + 1, v, t));
        this.stats.writes++;
        return req.fn === 5
          ? encodeResponse({ fn: 5, address: req.address, value: req.value })
          : encodeResponse({ fn: 15, address: req.address, count: values.length });
      }
      case 6:
      case 16: {
        const values = req.fn === 6 ? [req.value] : req.values;
        const regs = d.registers.filter((r) => r.fn === 3);
        const touched = regs.filter((r) => r.address >= req.address && r.address + wordsOf(r.type) <= req.address + values.length);
        if (!touched.length) return encodeException(req.fn, 2);
        for (const r of touched) {
          const off = r.address - req.address;
          this.overrides[r.metric] = decodeRegister(r, values.slice(off, off + wordsOf(r.type)));
        }
        this.stats.writes++;
        return req.fn === 6
          ? encodeResponse({ fn: 6, address: req.address, value: req.value })
          : encodeResponse({ fn: 16, address: req.address, count: values.length });
      }
    }
  }
}
