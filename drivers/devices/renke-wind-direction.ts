import { u16 } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** Renke RS-FXJT-N01 wind vane. */
export const renkeWindDirection: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'renke-wind-direction',
  title: 'Renke RS-FXJT-N01 wind vane',
  defaults: { baudRate: 4800, parity: 'none', unit: 1 },
  registers: [u16('windSector', 0x0000, { unit: 'sector 0-7' }), u16('windDirection', 0x0001)],
  derived: { windSector: (v) => Math.round((v.windDirection ?? 0) / 45) % 8 },
  identify: {
    ranges: { windSector: [0, 7] },
    // sector n covers n×45° ± 22.5° (one sector of slack for a vane on the boundary)
    relations: [{ id: 'sector-direction', name: 'sector agrees with direction', check: (v) => (v.windSector || v.windDirection ? Math.min(Math.abs(v.windSector! - Math.round(v.windDirection! / 45) % 8), 8 - Math.abs(v.windSector! - Math.round(v.windDirection! / 45) % 8)) <= 1 : undefined) }],
  },
};
