/**
 * A DeviceClient reads one device on a Bus through its definition, and keeps its health:
 * per-device counters, online/offline after `offlineAfter` misses, exponential backoff while offline.
 */
import { EventEmitter } from 'node:events';
import type { Bus } from './bus.js';
import { planReads, decodeBlocks, type ReadBlock } from './devices/registers.js';
import type { DeviceDefinition, FrameDeviceDefinition, ModbusDeviceDefinition, Values } from './devices/types.js';
import { channelMetric } from './devices/helpers.js';
import { DriverError, isDriverError, type DriverErrorCode } from './errors.js';
import type { Exchange } from './line.js';
import type { ModbusResult } from './modbus/pdu.js';

export interface DeviceCounters {
  requests: number;
  ok: number;
  timeouts: number;
  crcErrors: number;
  exceptions: number;
  shortFrames: number;
  garbage: number;
  closed: number;
  other: number;
  lastError: { code: DriverErrorCode; message: string; at: string } | null;
  lastRttMs: number | null;
}

export type DeviceStatus = 'unknown' | 'online' | 'offline';

/**
 * What the poller, the outputs and the gateway need of a device: a Modbus or frame device on a
 * line (DeviceClient) or a Firmata board (FirmataDevice). Events: `status`, `error-change`, and
 * `push` (values, ms) for readings the device reports by itself (Firmata inputs).
 */
export interface GatewayDevice extends EventEmitter {
  readonly id: string;
  /** the line the device is on (devices on one line are read one after another) */
  readonly bus: object;
  readonly unit: number;
  readonly pollMs: number;
  readonly offlineAfter: number;
  readonly counters: DeviceCounters;
  readonly definition: DeviceDefinition;
  status: DeviceStatus;
  readonly consecutiveMisses: number;
  read(): Promise<Values>;
  writeChannel(channel: number, on: boolean): Promise<boolean>;
  readChannels(): Promise<boolean[]>;
  nextDelayMs(): number;
}

export interface DeviceClientOptions {
  id: string;
  unit?: number;
  pollMs?: number;
  offlineAfter?: number;
  timeoutMs?: number;
  /** Ceiling of the poll backoff while offline. */
  maxBackoffMs?: number;
}

const COUNTER_OF: Partial<Record<DriverErrorCode, keyof DeviceCounters>> = {
  timeout: 'timeouts',
  crc: 'crcErrors',
  exception: 'exceptions',
  short_frame: 'shortFrames',
  garbage: 'garbage',
  bad_response: 'garbage',
  closed: 'closed',
  open_failed: 'closed',
};

/**
 * The health every device keeps, whatever it is reached through: per-device counters, errors
 * reported once per change, online/offline after `offlineAfter` misses, the poll backoff.
 */
export abstract class DeviceHealth extends EventEmitter {
  readonly id: string;
  readonly pollMs: number;
  readonly offlineAfter: number;
  readonly counters: DeviceCounters = {
    requests: 0,
    ok: 0,
    timeouts: 0,
    crcErrors: 0,
    exceptions: 0,
    shortFrames: 0,
    garbage: 0,
    closed: 0,
    other: 0,
    lastError: null,
    lastRttMs: null,
  };
  status: DeviceStatus = 'unknown';
  protected misses = 0;

  constructor(private readonly health: { id: string; pollMs?: number; offlineAfter?: number; maxBackoffMs?: number }) {
    super();
    this.id = health.id;
    this.pollMs = health.pollMs ?? 1000;
    this.offlineAfter = health.offlineAfter ?? 3;
  }

  protected abstract get ctx(): Record<string, unknown>;

  /** Delay before the next poll: `pollMs` while online, doubling per miss while offline, up to 60 s. */
  nextDelayMs(): number {
    if (this.status !== 'offline') return this.pollMs;
    const k = this.misses - this.offlineAfter;
    return Math.min(this.pollMs * 2 ** Math.max(1, k + 1), this.health.maxBackoffMs ?? 60_000);
  }

  get consecutiveMisses(): number {
    return this.misses;
  }

  /** Count a failure by its code; a new kind of error is reported (once per change, not per repeat). */
  protected noteError(e: unknown): DriverError {
    const err = isDriverError(e) ? e : new DriverError('closed', String(e), this.ctx);
    const key = COUNTER_OF[err.code] ?? 'other';
    (this.counters[key] as number)++;
    const prev = this.counters.lastError?.code;
    this.counters.lastError = { code: err.code, message: err.message, at: new Date().toISOString() };
    if (prev !== err.code) this.emit('error-change', err);
    return err;
  }

  /** One counted request (no async frame of its own: it is on every poll's path). */
  protected counted<T>(op: () => Promise<T>): Promise<T> {
    const t0 = this.requestStarted();
    let p: Promise<T>;
    try {
      p = op();
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.then((r) => {
      this.requestAnswered(t0);
      return r;
    }, this.requestFailed);
  }

  /** A request goes out: counted; its start time (for the round trip) is returned. */
  protected requestStarted(): number {
    this.counters.requests++;
    return performance.now();
  }
  /** A request started at `t0` was answered. */
  protected requestAnswered(t0: number): void {
    this.counters.ok++;
    this.counters.lastRttMs = Math.round((performance.now() - t0) * 100) / 100;
  }
  /** A request failed: counted by its code, and passed on. */
  protected readonly requestFailed = (e: unknown): never => {
    throw this.noteError(e);
  };

  protected markSuccess(): void {
    this.misses = 0;
    if (this.counters.lastError) {
      this.counters.lastError = null;
      this.emit('error-change', null);
    }
    if (this.status !== 'online') {
      this.status = 'online';
      this.emit('status', 'online');
    }
  }

  protected markMiss(): void {
    this.misses++;
    if (this.misses >= this.offlineAfter) this.markOffline();
  }

  /** Offline now (and polled with backoff from here). */
  protected markOffline(): void {
    this.misses = Math.max(this.misses, this.offlineAfter);
    if (this.status !== 'offline') {
      this.status = 'offline';
      this.emit('status', 'offline');
    }
  }
}

export class DeviceClient extends DeviceHealth implements GatewayDevice {
  readonly unit: number;
  private readonly blocks: ReadBlock[];
  /** the relay and input banks read with every poll (made once, not per read) */
  private readonly banks: NonNullable<ModbusDeviceDefinition['coils']>[] = [];
  private initializedForOpen = -1;

  constructor(
    readonly bus: Bus,
    readonly definition: DeviceDefinition,
    private readonly opts: DeviceClientOptions,
  ) {
    super(opts);
    this.unit = opts.unit ?? definition.defaults.unit ?? 1;
    this.blocks = definition.kind === 'modbus' ? planReads(definition.registers) : [];
    this.context = Object.freeze({ bus: bus.id, device: this.id, unit: this.unit });
    if (definition.kind === 'modbus') this.banks = [definition.coils, definition.discreteInputs].filter((b) => b !== undefined);
  }

  /** what every error of this device carries (made once: it goes with every request) */
  private readonly context: Readonly<Record<string, unknown>>;
  protected get ctx() {
    return this.context;
  }

  /** Read every metric (and channel) of the device once. */
  read(): Promise<Values> {
    const def = this.definition;
    let p: Promise<Values>;
    try {
      if (def.kind === 'firmata') throw new DriverError('invalid_argument', 'a firmata-io device is driven by FirmataDevice', this.ctx);
      p = def.kind === 'modbus' ? this.readModbus(def) : this.readFrame(def);
    } catch (e) {
      p = Promise.reject(e);
    }
    // one promise per read on top of the requests' (not an async frame for each layer: issue 17)
    return p.then(this.onReadOk, this.onReadFail);
  }
  private readonly onReadOk = (values: Values): Values => {
    this.markSuccess();
    return values;
  };
  private readonly onReadFail = (e: unknown): never => {
    this.markMiss();
    throw e;
  };

  /**
   * Every register block, then every relay and input bank, one request after another: one promise
   * per request and no async frame (this is every poll's path: issue 17). A request's failure is
   * counted by its code; a reply of the wrong kind fails the read without counting.
   */
  private readModbus(def: ModbusDeviceDefinition): Promise<Values> {
    const t = this.opts.timeoutMs;
    const blocks = this.blocks;
    const banks = this.banks;
    const results: { block: ReadBlock; words: number[] }[] = [];
    let values: Values = {};
    const step = (i: number): Promise<Values> | Values => {
      const block = i < blocks.length ? blocks[i]! : undefined;
      if (!block && i === blocks.length) values = decodeBlocks(def.registers, results);
      const bank = block ? undefined : banks[i - blocks.length];
      if (!block && !bank) return values;
      const t0 = this.requestStarted();
      let p: Promise<ModbusResult>;
      try {
        p = this.bus.modbus(this.unit, (block ?? bank)!, t, this.ctx);
      } catch (e) {
        p = Promise.reject(e);
      }
      return p.then((r) => {
        this.requestAnswered(t0);
        if (block) {
          if (r.fn !== 3 && r.fn !== 4) throw new DriverError('bad_response', 'unexpected reply', this.ctx);
          results.push({ block, words: r.registers });
        } else {
          if (r.fn !== 1 && r.fn !== 2) throw new DriverError('bad_response', 'unexpected reply', this.ctx);
          r.bits.forEach((b, k) => (values[channelMetric(k + 1)] = b ? 1 : 0));
        }
        return step(i + 1);
      }, this.requestFailed);
    };
    return Promise.resolve(step(0));
  }

  private async readFrame(def: FrameDeviceDefinition): Promise<Values> {
    const opens = this.bus.line.counters.opens;
    if (this.initializedForOpen !== opens) {
      for (const cmd of def.initCommands) await this.bus.exchange(settleExchange(cmd, 150)).catch(() => undefined);
      this.initializedForOpen = opens;
    }
    const timeoutMs = this.opts.timeoutMs ?? this.bus.timeoutMs;
    return this.counted(() => this.bus.exchange(frameExchange(def, timeoutMs, { bus: this.bus.id, ...this.ctx })));
  }

  /** Switch relay channel `channel` (from 1) and return the state the device confirms. */
  async writeChannel(channel: number, on: boolean): Promise<boolean> {
    const def = this.definition;
    if (def.kind !== 'modbus' || !def.coils?.writable)
      throw new DriverError('invalid_argument', `${def.name} has no relay outputs`, this.ctx);
    if (!Number.isInteger(channel) || channel < 1 || channel > def.coils.count)
      throw new DriverError('invalid_argument', `channel must be 1..${def.coils.count}, got ${channel}`, this.ctx);
    const address = def.coils.address + channel - 1;
    const r = await this.counted(() => this.bus.modbus(this.unit, { fn: 5, address, value: on }, this.opts.timeoutMs, this.ctx));
    if (r.fn !== 5) throw new DriverError('bad_response', 'unexpected reply', this.ctx);
    return r.value;
  }

  /** Read back the state of every relay or input channel: index 0 is channel 1. */
  async readChannels(): Promise<boolean[]> {
    const def = this.definition;
    const bank = def.kind === 'modbus' ? def.coils ?? def.discreteInputs : undefined;
    if (!bank) throw new DriverError('invalid_argument', `${def.name} has no channels`, this.ctx);
    const r = await this.counted(() => this.bus.modbus(this.unit, { fn: bank.fn, address: bank.address, count: bank.count }, this.opts.timeoutMs, this.ctx));
    if (r.fn !== 1 && r.fn !== 2) throw new DriverError('bad_response', 'unexpected reply', this.ctx);
    return r.bits;
  }
}

/** Send a command and take whatever comes back within `ms` (mode switches, whose replies vary by firmware). */
function settleExchange(cmd: Buffer, ms: number): Exchange<void> {
  return { tx: cmd, timeoutMs: ms, parse: () => undefined, onTimeout: () => new DriverError('timeout', 'settled') };
}

export function frameExchange(def: FrameDeviceDefinition, timeoutMs: number, ctx: Record<string, unknown>): Exchange<Values> {
  return {
    tx: def.pollCommand,
    timeoutMs,
    parse(rx) {
      const f = def.findFrame(rx);
      if (f === 'need') return undefined;
      if ('bad' in f) return { fail: new DriverError('crc', `${def.name} frame with a wrong checksum`, ctx) };
      return { done: def.decode(rx.subarray(f.offset, f.offset + def.frameLength)) };
    },
    onTimeout(rx) {
      if (rx.length === 0) return new DriverError('timeout', `no frame from ${def.name} in ${timeoutMs} ms`, ctx);
      const head = def.encode({})[0];
      if (rx[0] === head && rx.length < def.frameLength)
        return new DriverError('short_frame', `incomplete ${def.name} frame (${rx.length} of ${def.frameLength} bytes)`, ctx);
      return new DriverError('garbage', `${rx.length} bytes from ${def.name} that are no frame`, ctx);
    },
  };
}
