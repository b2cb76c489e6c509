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
  // Waveshare's development protocol (V2): holding register 0x4000 reads the device's own address,
  // 0x8000 its firmware version (0x00C8 = V2.00)
  identify: { unitIdRegister: { fn: 3, address: 0x4000 }, simulatorExtras: { 0x4000: 'unit', 0x8000: 0x00c8 } },
};
