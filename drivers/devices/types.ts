/** Device definitions are data: a register map or a frame codec, pure functions, no I/O. */
import type { Parity } from '../transports/link.js';

export type RegisterType = 'u16' | 's16' | 'u32' | 's32' | 'f32';
/** `be`: high word first (ABCD, the Modbus default); `le`: low word first (CDAB). */
export type WordOrder = 'be' | 'le';

export interface RegisterSpec {
  metric: string;
  /** 3 = holding registers, 4 = input registers */
  fn: 3 | 4;
  address: number;
  type: RegisterType;
  wordOrder: WordOrder;
  scale: number;
  unit: string;
}

/** A bank of on/off channels: relay coils (fn 1, written with fn 5) or discrete inputs (fn 2). Channel 1 is `address`. */
export interface ChannelBank {
  fn: 1 | 2;
  address: number;
  count: number;
  writable: boolean;
}

export interface SerialDefaults {
  baudRate: number;
  parity: Parity;
  unit?: number;
}

export interface ModbusDeviceDefinition {
  kind: 'modbus';
  name: string;
  title: string;
  defaults: SerialDefaults & { unit: number };
  registers: RegisterSpec[];
  coils?: ChannelBank;
  discreteInputs?: ChannelBank;
  /** Metrics the device computes from others (the simulator uses these when a scenario leaves them out). */
  derived?: Record<string, (values: Values) => number>;
  /** What the bus scan weighs, beyond the map itself, to tell this device from others that answer the same reads. */
  identify?: Identification;
}

/**
 * Evidence a scan can check. A device that answers every address (with zeros, often) makes "it
 * answered" worthless, so what counts is what the answers say.
 */
export interface Identification {
  /** Plausible ranges of the map's values that are not catalog metrics (e.g. a wind level 0–17). */
  ranges?: Record<string, [number, number]>;
  /**
   * Relations between the values a real device of this kind keeps: true (they agree), false (a
   * device of this kind would never answer this), undefined (cannot tell, e.g. all zero).
   */
  relations?: { /** its words for people: `scan.rel.<id>` in the message catalogs (else `name`) */ id: string; name: string; check: (v: Values) => boolean | undefined }[];
  /** Registers the vendor documents for identification: FC03 at `address` holds the unit id itself. */
  unitIdRegister?: { fn: 3; address: number };
  /** The simulator answers these too (holding registers outside the map): address → value ('unit' = the unit id). */
  simulatorExtras?: Record<number, number | 'unit'>;
}

export type Values = Record<string, number>;

/** A sensor that speaks its own frames on a UART (PMS5003, SDS011): one per serial bus. */
export interface FrameDeviceDefinition {
  kind: 'frame';
  name: string;
  title: string;
  defaults: SerialDefaults;
  metrics: { metric: string; unit: string }[];
  /** Sent once after the port opens (e.g. switch to passive/query mode). */
  initCommands: Buffer[];
  /** Sent for every reading. */
  pollCommand: Buffer;
  /** Length of the data frame the sensor answers with. */
  frameLength: number;
  /** Find a complete, checksum-valid data frame in `rx`: its offset, 'need' more bytes, or 'bad' (a frame start with a wrong checksum at `offset`). */
  findFrame(rx: Buffer): { offset: number } | { bad: number } | 'need';
  decode(frame: Buffer): Values;
  /** Simulator side: the frame a sensor showing `values` sends. */
  encode(values: Values): Buffer;
  /** Simulator side: does this received command ask for a data frame? */
  isPollCommand(cmd: Buffer): boolean;
  /** Simulator side: length of a command starting at cmd[0], or undefined if more bytes are needed; 1 skips a stray byte. */
  commandLength(cmd: Buffer): number | undefined;
}

/** One pin of a Firmata board: a relay output or a digital input. Channel n is pins[n-1]. */
export interface PinSpec {
  pin: number;
  mode: 'relay' | 'input';
  /**
   * Relays: `NO` drives the pin HIGH to switch the load on, `NC` drives it LOW (johnny-five's
   * Relay types: a normally-closed contact, or an active-low relay module).
   */
  type: 'NO' | 'NC';
  /** Inputs: enable the board's pull-up (a button to ground). */
  pullup: boolean;
  /** Inputs: LOW means active (pressed). Default: true with a pull-up, else false. */
  activeLow: boolean;
}

/** An Arduino running StandardFirmata (via johnny-five): pins from the site config. */
export interface FirmataDeviceDefinition {
  kind: 'firmata';
  name: string;
  title: string;
  defaults: SerialDefaults;
  pins: PinSpec[];
  /** The pin of the status light, if any. */
  statusLed?: number;
}

export type DeviceDefinition = ModbusDeviceDefinition | FrameDeviceDefinition | FirmataDeviceDefinition;
