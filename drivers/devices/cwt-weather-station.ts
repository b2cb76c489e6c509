import { beaufort } from './beaufort.js';
import { s16, scaled, u16 } from './helpers.js';
import type { ModbusDeviceDefinition } from './types.js';

/** Integrated ultrasonic site monitor head (wind, T/RH, noise, PM2.5, PM10, pressure). */
export const cwtWeatherStation: ModbusDeviceDefinition = {
  kind: 'modbus',
  name: 'cwt-weather-station',
  title: 'CWT integrated ultrasonic weather/dust head',
  defaults: { baudRate: 4800, parity: 'none', unit: 1 },
  registers: [
    scaled('windSpeed', 0x01f4, 0.01),
    u16('windLevel', 0x01f5, { unit: 'Beaufort' }),
    u16('windDirection', 0x01f7),
    scaled('humidity', 0x01f8, 0.1),
    s16('temperature', 0x01f9, 0.1),
    scaled('noise', 0x01fa, 0.1),
    u16('pm25', 0x01fb),
    u16('pm10', 0x01fc),
    scaled('pressure', 0x01fd, 0.1),
  ],
  derived: { windLevel: (v) => beaufort(v.windSpeed ?? 0) },
  identify: {
    ranges: { windLevel: [0, 17] },
    relations: [
      // the head computes its wind level from its own speed (a gust between the two reads: one level off)
      { id: 'wind-level-speed', name: 'wind level agrees with wind speed', check: (v) => (v.windSpeed || v.windLevel ? Math.abs(v.windLevel! - beaufort(v.windSpeed!)) <= 1 : undefined) },
      { id: 'pm25-pm10', name: 'PM2.5 ≤ PM10', check: (v) => (v.pm25 && v.pm10 ? v.pm25 <= v.pm10 * 1.05 : undefined) },
    ],
  },
};
