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
};
