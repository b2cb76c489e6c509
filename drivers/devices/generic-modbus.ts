/** `generic-modbus`: a device whose register map is written in the site config. */
import { unitOf, coils, discreteInputs } from './helpers.js';
import type { ModbusDeviceDefinition, RegisterType, WordOrder } from './types.js';

export interface GenericRegisterConfig {
  metric: string;
  fn?: 3 | 4;
  address: number;
  type?: RegisterType;
  wordOrder?: WordOrder;
  scale?: number;
  unit?: string;
}

export interface GenericModbusConfig {
  registers?: GenericRegisterConfig[];
  coils?: number;
  discreteInputs?: number;
  baudRate?: number;
}

export function genericModbus(cfg: GenericModbusConfig): ModbusDeviceDefinition {
  return {
    kind: 'modbus',
    name: 'generic-modbus',
    title: 'Generic Modbus device (map from the site config)',
    defaults: { baudRate: cfg.baudRate ?? 9600, parity: 'none', unit: 1 },
    registers: (cfg.registers ?? []).map((r) => ({
      metric: r.metric,
      fn: r.fn ?? 3,
      address: r.address,
      type: r.type ?? 'u16',
      wordOrder: r.wordOrder ?? 'be',
      scale: r.scale ?? 1,
      unit: r.unit ?? unitOf(r.metric),
    })),
    ...(cfg.coils ? { coils: coils(cfg.coils) } : {}),
    ...(cfg.discreteInputs ? { discreteInputs: discreteInputs(cfg.discreteInputs) } : {}),
  };
}
