import { discreteInputs } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** Waveshare Modbus RTU digital input module, 8 channels: discrete inputs 0x0000–0x0007. */
export const waveshareDi8ch: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'waveshare-di-8ch',
  title: 'Waveshare 8-channel digital input',
  defaults: { baudRate: 9600, parity: 'none', unit: 1 },
  registers: [],
  discreteInputs: discreteInputs(8),
  // Waveshare's development protocol (V2): holding register 0x4000 reads the device's own address,
  // 0x8000 its firmware version (0x00C8 = V2.00)
  identify: { unitIdRegister: { fn: 3, address: 0x4000 }, simulatorExtras: { 0x4000: 'unit', 0x8000: 0x00c8 } },
};
