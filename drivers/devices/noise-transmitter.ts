import { scaled } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** RS-485 sound level meter. */
export const noiseTransmitter: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'noise-transmitter',
  title: 'Sound level transmitter',
  defaults: { baudRate: 9600, parity: 'none', unit: 1 },
  registers: [scaled('noise', 0x0000, 0.1)],
};
