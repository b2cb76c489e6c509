import { u16 } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** Renke RS-FXJT-N01 wind vane. */
export const renkeWindDirection: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'renke-wind-direction',
  title: 'Renke RS-FXJT-N01 wind vane',
  defaults: { baudRate: 4800, parity: 'none', unit: 1 },
  registers: [u16('windSector', 0x0000, { unit: 'sector 0-7' }), u16('windDirection', 0x0001)],
};
