/** The registry of built-in drivers. Adding a device: one file in this folder and one line here. */
import { DriverError } from '../errors.js';
import { cwtWeatherStation } from './cwt-weather-station.js';
import { dustTransmitter } from './dust-transmitter.js';
import { firmataIo, type FirmataIoConfig } from './firmata-io.js';
import { genericModbus, type GenericModbusConfig } from './generic-modbus.js';
import { noiseTransmitter } from './noise-transmitter.js';
import { pms5003 } from './pms5003.js';
import { renkeWindDirection } from './renke-wind-direction.js';
import { renkeWindSpeed } from './renke-wind-speed.js';
import { sds011 } from './sds011.js';
import type { DeviceDefinition } from './types.js';
import { waveshareDi8ch } from './waveshare-di-8ch.js';
import { waveshareRelay8ch } from './waveshare-relay-8ch.js';
import { xyMd02 } from './xy-md02.js';

export const BUILTIN_DRIVERS: Record<string, DeviceDefinition> = Object.fromEntries(
  [
    cwtWeatherStation,
    renkeWindSpeed,
    renkeWindDirection,
    xyMd02,
    noiseTransmitter,
    dustTransmitter,
    waveshareRelay8ch,
    waveshareDi8ch,
    pms5003,
    sds011,
  ].map((d) => [d.name, d]),
);

/** Drivers whose map or pins come from the site config. */
export const CONFIGURED_DRIVERS = ['generic-modbus', 'firmata-io'] as const;
export const DRIVER_NAMES = [...Object.keys(BUILTIN_DRIVERS), ...CONFIGURED_DRIVERS];

/** What a configured driver takes from its device entry. */
export type DeviceParams = GenericModbusConfig & FirmataIoConfig;

export function getDefinition(name: string, params?: DeviceParams): DeviceDefinition {
  if (name === 'generic-modbus') return genericModbus(params ?? {});
  if (name === 'firmata-io') return firmataIo(params ?? {});
  const d = BUILTIN_DRIVERS[name];
  if (!d) throw new DriverError('unknown_driver', `unknown driver "${name}"; known: ${DRIVER_NAMES.join(', ')}`);
  return d;
}

export type { DeviceDefinition, ModbusDeviceDefinition, FrameDeviceDefinition, FirmataDeviceDefinition, PinSpec, Values } from './types.js';
