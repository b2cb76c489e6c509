import { scaled } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** Renke RS-FSJT-N01 cup anemometer. */
export const renkeWindSpeed: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'renke-wind-speed',
  title: 'Renke RS-FSJT-N01 cup anemometer',
  defaults: { baudRate: 4800, parity: 'none', unit: 1 },
  registers: [scaled('windSpeed', 0x0000, 0.1)],
};
