import { s16, scaled } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** XY-MD02 SHT20 temperature/humidity transmitter (input registers). */
export const xyMd02: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'xy-md02',
  title: 'XY-MD02 SHT20 temperature/humidity',
  defaults: { baudRate: 9600, parity: 'none', unit: 1 },
  registers: [s16('temperature', 0x0001, 0.1, { fn: 4 }), scaled('humidity', 0x0002, 0.1, { fn: 4 })],
};
