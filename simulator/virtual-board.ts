/**
 * A virtual Arduino running StandardFirmata, for the gateway's Firmata bus: the board's pins, and
 * two ways in — in-process, a `mock-firmata` IO plugin (`connect()`), or StandardFirmata's bytes
 * on a pty (firmata-wire.ts, through `beginSession`/`writePin`/`readInput`/`onInput`). Relay pins written by the gateway switch the virtual
 * device's channels (kept in its coil log, in logical on/off); input pins follow the scenario
 * (or a hand-made press with contact bounce) and are reported to the gateway on change, as
 * StandardFirmata reports digital ports; pin state queries answer with the level last written.
 * Every pin write is logged with its time, so a test can read the status light's pattern.
 * Unplugging emits `disconnect` on the IO, drops the relays (the board loses power) and refuses
 * to connect until plugged back.
 */
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { inputLevel, logicalOf } from '../drivers/devices/firmata-io.js';
import { channelMetric } from '../drivers/devices/helpers.js';
import type { FirmataDeviceDefinition, PinSpec } from '../drivers/devices/types.js';
import type { FirmataIo } from '../drivers/firmata.js';
import type { SimClock } from './serial-slave.js';
import type { VirtualDevice } from './virtual-device.js';

const require = createRequire(import.meta.url);

interface MockPin {
  supportedModes: number[];
  mode: number;
  value: number;
  report: number;
  analogChannel: number;
  state?: number;
}
interface MockFirmataModule {
  Firmata: new (opts?: { pins?: MockPin[] }) => FirmataIo & EventEmitter;
  Pins: { UNO: MockPin[] };
}
let mock: MockFirmataModule | undefined;
/** mock-firmata is a test tool (a devDependency): loaded only when a virtual board is served. */
function mockFirmata(): MockFirmataModule {
  try {
    mock ??= require('mock-firmata') as MockFirmataModule;
  } catch {
    throw new Error('the virtual Firmata board needs the dev dependency mock-firmata: run npm ci (without --omit=dev)');
  }
  return mock;
}

export interface PinWrite {
  /** Scenario seconds. */
  t: number;
  /** Wall-clock ms of the simulator's clock (the gateway's clock in tests). */
  wallMs: number;
  /** Real ms (performance.now()), for blink rates. */
  realMs: number;
  pin: number;
  value: number;
}

export interface VirtualBoardOptions {
  /** How often input pins are compared with the scenario, real ms. */
  watchMs?: number;
}

export class VirtualBoard {
  readonly pinLog: PinWrite[] = [];
  readonly stats = { connects: 0, disconnects: 0, refused: 0, queries: 0 };
  private io: (FirmataIo & EventEmitter) | undefined;
  private levels = new Map<number, number>();
  private subscribers = new Set<(pin: number, level: number) => void>();
  /** Input levels set by hand (a press in progress), winning over the scenario. */
  private manual = new Map<number, number>();
  private watch: NodeJS.Timeout | undefined;
  unplugged = false;
  /** Unplugged by a `disconnect` fault (plugged back when it ends), not by hand. */
  faultUnplug = false;
  readonly def: FirmataDeviceDefinition;

  constructor(
    readonly device: VirtualDevice,
    private readonly clock: SimClock,
    private readonly opts: VirtualBoardOptions = {},
  ) {
    if (device.definition.kind !== 'firmata') throw new Error(`${device.id} is not a firmata-io device`);
    this.def = device.definition;
  }

  get connected(): boolean {
    return !!this.watch;
  }

  private channelOf(pin: number): { ch: number; spec: PinSpec } | undefined {
    const i = this.def.pins.findIndex((p) => p.pin === pin);
    return i < 0 ? undefined : { ch: i + 1, spec: this.def.pins[i]! };
  }

  /** A pin written by the gateway (through either IO): logged; a relay pin switches its channel. */
  writePin(pin: number, value: number): void {
    const { t, wallMs } = this.clock.now();
    this.pinLog.push({ t, wallMs, realMs: performance.now(), pin, value });
    if (this.pinLog.length > 20_000) this.pinLog.shift();
    this.levels.set(pin, value);
    const c = this.channelOf(pin);
    if (c?.spec.mode === 'relay') this.device.switchChannel(c.ch, logicalOf(c.spec, value) === 1, t);
  }

  /** What a pin-state query answers: the level last written (outputs) or read (inputs). */
  pinState(pin: number): number {
    return this.levels.get(pin) ?? 0;
  }

  /** The level an input pin reads now (and remember it as reported). */
  readInput(pin: number): number {
    const level = this.inputLevelNow(pin);
    this.levels.set(pin, level);
    return level;
  }

  /** Be told of every input pin whose level changes (a session of either IO); returns the unsubscribe. */
  onInput(cb: (pin: number, level: number) => void): () => void {
    this.subscribers.add(cb);
    return () => this.subscribers.delete(cb);
  }

  /** A new session (the port opened, the board reset): pins as after a reset, input watch on. */
  beginSession(): void {
    if (this.unplugged) {
      this.stats.refused++;
      throw new Error('no such device (the board is unplugged)');
    }
    this.drop();
    this.levels.clear();
    this.subscribers.clear();
    this.stats.connects++;
    this.watch = setInterval(() => this.poll(), this.opts.watchMs ?? 10);
    this.watch.unref();
  }

  /** The gateway opens the port through mock-firmata: a fresh board, ready a moment later. */
  connect(): FirmataIo {
    this.beginSession();
    const { Firmata, Pins } = mockFirmata();
    const io = new Firmata({ pins: Pins.UNO.map((p) => ({ ...p, supportedModes: [...p.supportedModes] })) });
    const live = () => this.io === io; // a board that is gone hears nothing
    const listeners = new Map<number, ((v: number) => void)[]>();
    this.onInput((pin, level) => {
      for (const cb of listeners.get(pin) ?? []) cb(level);
    });
    Object.assign(io, {
      pinMode: (pin: number, mode: number) => {
        const p = io.pins[pin];
        if (p) p.mode = mode;
      },
      digitalWrite: (pin: number, value: number) => live() && this.writePin(pin, value ? 1 : 0),
      analogWrite: (pin: number, value: number) => live() && this.writePin(pin, value),
      digitalRead: (pin: number, cb: (v: number) => void) => {
        listeners.set(pin, [...(listeners.get(pin) ?? []), cb]);
        // StandardFirmata reports the port as soon as reporting is switched on
        const level = this.readInput(pin);
        setImmediate(() => cb(level));
      },
      queryPinState: (pin: number, cb: () => void) => {
        this.stats.queries++;
        const p = io.pins[pin];
        if (p) p.state = this.pinState(pin);
        setImmediate(cb);
      },
    });
    this.io = io;
    setImmediate(() => {
      if (!live()) return;
      io.emit('connect');
      io.emit('ready');
    });
    return io;
  }

  /** The level an input pin shows now: a press by hand, else the scenario's value. */
  private inputLevelNow(pin: number): number {
    const m = this.manual.get(pin);
    if (m !== undefined) return m;
    const c = this.channelOf(pin);
    if (!c || c.spec.mode !== 'input') return 0;
    const { t, wallMs } = this.clock.now();
    return inputLevel(c.spec, this.device.value(channelMetric(c.ch), t, wallMs) !== 0);
  }

  /** Report input pins whose level changed (StandardFirmata sends a port report on change). */
  private poll(): void {
    if (!this.watch) return;
    for (const p of this.def.pins) {
      if (p.mode !== 'input') continue;
      const level = this.inputLevelNow(p.pin);
      if (level === this.levels.get(p.pin)) continue;
      this.setLevel(p.pin, level);
    }
  }

  private setLevel(pin: number, level: number): void {
    this.levels.set(pin, level);
    for (const cb of this.subscribers) cb(pin, level);
  }

  /**
   * Press a button on input channel `channel` for `holdMs`, with `bounces` contact bounces (1 ms
   * apart) at the press and at the release. Resolves when released.
   */
  async press(channel: number, holdMs: number, bounces = 0): Promise<void> {
    const spec = this.def.pins[channel - 1];
    if (!spec || spec.mode !== 'input') throw new Error(`channel ${channel} of ${this.device.id} is not an input`);
    const active = inputLevel(spec, true);
    const idle = inputLevel(spec, false);
    const level = (v: number) => {
      this.manual.set(spec.pin, v);
      this.setLevel(spec.pin, v);
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const edge = async (to: number, from: number) => {
      for (let i = 0; i < bounces; i++) {
        level(to);
        await sleep(1);
        level(from);
        await sleep(1);
      }
      level(to);
    };
    await edge(active, idle);
    await sleep(holdMs);
    await edge(idle, active);
    this.manual.delete(spec.pin);
  }

  /** The level a pin was last driven to (or reads), or undefined. */
  level(pin: number): number | undefined {
    return this.levels.get(pin);
  }

  private drop(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = undefined;
    this.io = undefined;
    this.subscribers.clear();
  }

  /** Pull the USB cable: the IO says `disconnect` (a pty vanishes), the board loses power (relays drop out). */
  unplug(): void {
    if (this.unplugged) return;
    this.unplugged = true;
    const io = this.io;
    if (this.watch) this.stats.disconnects++;
    this.drop();
    this.def.pins.forEach((p, i) => {
      if (p.mode === 'relay') this.device.overrides[channelMetric(i + 1)] = 0;
    });
    io?.emit('disconnect');
  }

  replug(): void {
    this.unplugged = false;
  }

  stop(): void {
    this.drop();
  }
}
