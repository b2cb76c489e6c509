/**
 * `firmata-io`: an Arduino (or any board running StandardFirmata) driven through johnny-five.
 * Its channels are the pins listed in the site config, numbered from 1 in that order: relay pins
 * are outputs, input pins are buttons and contacts. One more pin may carry the status light.
 * Pure data and pure functions: the level a pin must have for a logical state, and back.
 */
import type { FirmataDeviceDefinition, PinSpec } from './types.js';

export interface FirmataPinConfig {
  pin: number;
  mode: 'relay' | 'input';
  type?: 'NO' | 'NC';
  pullup?: boolean;
  activeLow?: boolean;
}

export interface FirmataIoConfig {
  pins?: FirmataPinConfig[];
  statusLed?: number;
}

export function firmataIo(cfg: FirmataIoConfig): FirmataDeviceDefinition {
  return {
    kind: 'firmata',
    name: 'firmata-io',
    title: 'Arduino with StandardFirmata (relay pins, input pins, status light)',
    defaults: { baudRate: 57_600, parity: 'none' },
    pins: (cfg.pins ?? []).map(
      (p): PinSpec => ({ pin: p.pin, mode: p.mode, type: p.type ?? 'NO', pullup: p.pullup ?? false, activeLow: p.activeLow ?? p.pullup ?? false }),
    ),
    ...(cfg.statusLed !== undefined ? { statusLed: cfg.statusLed } : {}),
  };
}

/** The pin level (0/1) that puts a relay pin in logical state `on`. */
export function relayLevel(p: PinSpec, on: boolean): 0 | 1 {
  return on !== (p.type === 'NC') ? 1 : 0;
}

/** The logical state (1 = on / active) a pin level means, for relays and inputs alike. */
export function logicalOf(p: PinSpec, level: number): 0 | 1 {
  const high = level !== 0;
  if (p.mode === 'relay') return high !== (p.type === 'NC') ? 1 : 0;
  return high !== p.activeLow ? 1 : 0;
}

/** The level an input pin shows when its logical state is `active`. */
export function inputLevel(p: PinSpec, active: boolean): 0 | 1 {
  return active !== p.activeLow ? 1 : 0;
}
