import { u16 } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** TSP/PM10/PM2.5 dust transmitter. */
export const dustTransmitter: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'dust-transmitter',
  title: 'TSP/PM10/PM2.5 dust transmitter',
  defaults: { baudRate: 9600, parity: 'none', unit: 1 },
  registers: [u16('pm25', 0x0000), u16('pm10', 0x0001), u16('tsp', 0x0002)],
  identify: {
    relations: [{ id: 'pm-order', name: 'PM2.5 ≤ PM10 ≤ TSP', check: (v) => (v.pm25 && v.pm10 && v.tsp ? v.pm25 <= v.pm10 * 1.05 && v.pm10 <= v.tsp * 1.05 : undefined) }],
  },
};
