import { coils } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** Waveshare Modbus RTU relay, 8 channels: coils 0x0000–0x0007. */
export const waveshareRelay8ch: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'waveshare-relay-8ch',
  title: 'Waveshare 8-channel Modbus relay',
  defaults: { baudRate: 9600, parity: 'none', unit: 1 },
  registers: [],
  coils: coils(8),
};
