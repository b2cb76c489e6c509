/**
 * Firmata: an Arduino (or any board running StandardFirmata) on a serial port, driven through
 * johnny-five. A FirmataBus owns the johnny-five Board and rebuilds it when the board is unplugged
 * and plugged back; a FirmataDevice turns the configured pins into channels with the same shape as
 * a Modbus relay or input module (read, writeChannel, readChannels, status, counters), so the
 * poller, the outputs, the rules and remote commands drive it unchanged.
 *
 * Inputs are reported by the board on change, not polled: each press is debounced here and handed
 * on at once as a reading stamped with the moment the press began.
 */
import { EventEmitter } from 'node:events';
import type { Values } from './devices/types.js';
import type { FirmataDeviceDefinition, PinSpec } from './devices/types.js';
import { logicalOf } from './devices/firmata-io.js';
import { channelMetric } from './devices/helpers.js';
import { DriverError, isDriverError } from './errors.js';
import { Reopener } from './reopen.js';
import { DeviceHealth, type GatewayDevice } from './device.js';

// ------------------------------------------------------------------ the IO plugin seen from here

/** The part of a johnny-five IO plugin (firmata.js, mock-firmata) this module relies on. */
export interface FirmataIo extends EventEmitter {
  readonly isReady: boolean;
  readonly MODES: Record<string, number>;
  pins: { mode?: number; value?: number; state?: number; supportedModes?: number[] }[];
  pinMode(pin: number, mode: number): void;
  digitalWrite(pin: number, value: number): void;
  digitalRead(pin: number, cb: (value: number) => void): void;
  queryPinState(pin: number, cb: () => void): void;
  reportDigitalPin?(pin: number, value: 0 | 1): void;
  /** firmata.js: the serial transport. */
  transport?: { close?(cb?: (err?: unknown) => void): void; isOpen?: boolean };
}

/** Makes the IO for a serial path; throws (or emits `error`) when the board is not there. */
export type FirmataIoFactory = (path: string) => FirmataIo | Promise<FirmataIo>;

/** The production IO: firmata.js on the serial port (loaded on first use; most gateways have no board). */
export const serialFirmataIo: FirmataIoFactory = async (path) => {
  const { default: Firmata } = (await import('firmata')) as unknown as { default: new (port: string, opts: object, cb: (err?: Error) => void) => FirmataIo };
  let io: FirmataIo | undefined = undefined;
  const created = new Firmata(path, { reportVersionTimeout: 5000 }, (err?: Error) => {
    if (err) io?.emit('open-failed', err);
  });
  io = created;
  return created;
};

type Five = typeof import('johnny-five');
let five: Promise<Five> | undefined;
/** johnny-five is loaded on first use: it costs ~15 MB that a gateway without a board does not need. */
function loadFive(): Promise<Five> {
  five ??= import('johnny-five').then((m) => ((m as unknown as { default?: Five }).default ?? m) as Five);
  return five;
}

/** The part of johnny-five's Board used here. */
export interface FiveBoard extends EventEmitter {
  io: FirmataIo;
  isReady: boolean;
  pinMode(pin: number, mode: number): void;
  digitalWrite(pin: number, value: number): void;
  digitalRead(pin: number, cb: (value: number) => void): void;
}

// ------------------------------------------------------------------ the bus: one board on one port

export interface FirmataBusConfig {
  id: string;
  path: string;
  timeoutMs?: number;
}

export interface FirmataBusOptions {
  /** Where the IO comes from (tests: the simulator's virtual board). */
  io?: FirmataIoFactory;
  /** How long a board may take from open to ready (an Uno resets when the port opens: ~2 s). */
  readyTimeoutMs?: number;
  reopenInitialMs?: number;
  reopenMaxMs?: number;
}

export type FirmataBusState = 'idle' | 'opening' | 'open' | 'down' | 'stopped';

export class FirmataBus extends EventEmitter {
  readonly protocol = 'firmata' as const;
  readonly timeoutMs: number;
  private _state: FirmataBusState = 'idle';
  board: FiveBoard | undefined;
  private io: FirmataIo | undefined;
  private readonly reopener: Reopener;
  private opening: Promise<void> | undefined;
  lastOpenError: DriverError | undefined;
  readonly counters = { opens: 0, closes: 0, openFailures: 0 };
  /**
   * The state each relay pin should be in (logical on/off), as last asked for: the board's, not a
   * device's, so it outlives a config change (a new device on this bus) and an unplugged board.
   */
  readonly relayWanted = new Map<number, boolean>();

  constructor(
    readonly config: FirmataBusConfig,
    private readonly opts: FirmataBusOptions = {},
  ) {
    super();
    this.timeoutMs = config.timeoutMs ?? 500;
    this.reopener = new Reopener(() => void this.tryOpen(), opts.reopenInitialMs, opts.reopenMaxMs);
  }

  get id(): string {
    return this.config.id;
  }
  get address(): string {
    return this.config.path;
  }
  get state(): FirmataBusState {
    return this._state;
  }
  get isOpen(): boolean {
    return this._state === 'open';
  }

  /** Open the board; on failure keep retrying in the background. Resolves after the first attempt. */
  start(): Promise<void> {
    if (this._state === 'stopped') this._state = 'idle';
    return this.tryOpen();
  }

  private tryOpen(): Promise<void> {
    if (this.opening) return this.opening;
    if (this._state === 'open' || this._state === 'stopped') return Promise.resolve();
    this._state = 'opening';
    this.opening = this.connect()
      .then((board) => {
        if ((this._state as FirmataBusState) === 'stopped') {
          this.teardown(board);
          return;
        }
        this.counters.opens++;
        this.reopener.reset();
        this.lastOpenError = undefined;
        this.board = board;
        this._state = 'open';
        this.emit('open', board);
      })
      .catch((e: unknown) => {
        this.counters.openFailures++;
        this.lastOpenError = isDriverError(e) ? e : new DriverError('open_failed', `cannot open ${this.address}: ${(e as Error).message ?? String(e)}`, { bus: this.id });
        if ((this._state as FirmataBusState) !== 'stopped') {
          this._state = 'down';
          this.emit('down', this.lastOpenError);
          this.scheduleReopen();
        }
      })
      .finally(() => (this.opening = undefined));
    return this.opening;
  }

  /** One attempt: make the IO, wrap it in a Board, wait for ready. */
  private async connect(): Promise<FiveBoard> {
    const five = await loadFive();
    const io = await (this.opts.io ?? serialFirmataIo)(this.config.path);
    this.io = io;
    const ctx = { bus: this.id };
    return new Promise<FiveBoard>((resolve, reject) => {
      const BoardCtor = five.Board as unknown as new (o: object) => FiveBoard;
      const board = new BoardCtor({ io, repl: false, debug: false, sigint: false, timeout: (this.opts.readyTimeoutMs ?? 10_000) + 1000 });
      // johnny-five reports through 'error' (its own connect timeout among them): an unheard
      // 'error' would end the process, so one listener stays for the board's whole life
      board.on('error', () => undefined);
      const fail = (why: string) => {
        cleanup();
        this.teardown(board);
        reject(new DriverError('open_failed', `cannot open ${this.address}: ${why}`, ctx));
      };
      const onError = (e: unknown) => fail(e instanceof Error ? e.message : String(e ?? 'error'));
      const onGone = () => fail('the board went away while connecting');
      const timer = setTimeout(() => fail(`no answer from StandardFirmata within ${(this.opts.readyTimeoutMs ?? 10_000) / 1000} s`), this.opts.readyTimeoutMs ?? 10_000);
      const cleanup = () => {
        clearTimeout(timer);
        io.off('error', onError).off('open-failed', onError).off('disconnect', onGone).off('close', onGone);
        board.off('error', onError);
      };
      io.on('error', onError).on('open-failed', onError).on('disconnect', onGone).on('close', onGone);
      board.on('error', onError);
      board.once('ready', () => {
        cleanup();
        const gone = (why: string) => () => this.lost(board, why);
        io.once('disconnect', gone('disconnected'));
        io.once('close', gone('closed'));
        io.on('error', (e: unknown) => this.lost(board, `error: ${e instanceof Error ? e.message : String(e)}`));
        resolve(board);
      });
    });
  }

  /** The board is gone (unplugged, port closed): tell the device, then look for it again. */
  private lost(board: FiveBoard, why: string): void {
    if (this.board !== board) return;
    this.board = undefined;
    this.counters.closes++;
    this.teardown(board);
    if (this._state === 'stopped') return;
    this._state = 'down';
    this.lastOpenError = new DriverError('closed', `board on ${this.address} ${why}`, { bus: this.id });
    this.emit('down', this.lastOpenError);
    this.scheduleReopen();
  }

  private scheduleReopen(): void {
    if (this._state !== 'stopped') this.reopener.schedule();
  }

  /** Forget a board: out of johnny-five's registry, its port closed. */
  private teardown(board: FiveBoard): void {
    const timer = (board as unknown as { timer?: NodeJS.Timeout }).timer;
    if (timer) clearTimeout(timer);
    void loadFive().then((five) => {
      const cache = (five.Board as unknown as { cache: unknown[] }).cache;
      const i = cache.indexOf(board);
      if (i >= 0) cache.splice(i, 1);
    });
    const io = board.io ?? this.io;
    io?.removeAllListeners('disconnect');
    io?.removeAllListeners('close');
    io?.on('error', () => undefined); // a dying port may still complain
    try {
      if (io?.transport?.isOpen !== false) io?.transport?.close?.(() => undefined);
    } catch {
      /* already closed */
    }
  }

  async stop(): Promise<void> {
    this._state = 'stopped';
    this.reopener.cancel();
    await this.opening?.catch(() => undefined);
    const board = this.board;
    this.board = undefined;
    if (board) {
      this.emit('closing', board);
      this.teardown(board);
    }
  }
}

// ------------------------------------------------------------------ the device: pins as channels

export type LightPattern = 'on' | 'slow' | 'fast' | 'off';
/** Half-periods of the status light's blinks, ms. */
export const BLINK_MS: Record<'slow' | 'fast', number> = { slow: 500, fast: 100 };

export interface FirmataDeviceOptions {
  id: string;
  pollMs?: number;
  offlineAfter?: number;
  timeoutMs?: number;
  maxBackoffMs?: number;
  /** Debounce per input channel (from the `inputs:` that use it), ms; default 50. */
  debounceMs?: Record<number, number>;
  /** The gateway's clock, for the time stamps of input edges. */
  now?: () => number;
}

interface InputState {
  raw: 0 | 1;
  stable: 0 | 1;
  /** When the raw level first left the stable one (the press time), while a change is pending. */
  pendingSince: number | null;
  timer: NodeJS.Timeout | undefined;
}

interface LedLike {
  on(): unknown;
  off(): unknown;
  blink(ms: number): unknown;
  stop(): unknown;
}
interface RelayLike {
  open(): unknown;
  close(): unknown;
}

export class FirmataDevice extends DeviceHealth implements GatewayDevice {
  readonly unit = 0;
  private readonly now: () => number;
  private board: FiveBoard | undefined;
  private relays = new Map<number, RelayLike>();
  private led: LedLike | undefined;
  private light: LightPattern = 'off';
  /** Logical state each relay channel was last confirmed in. */
  private readonly confirmed = new Map<number, 0 | 1>();
  private readonly inputs = new Map<number, InputState>();

  constructor(
    readonly bus: FirmataBus,
    readonly definition: FirmataDeviceDefinition,
    private readonly opts: FirmataDeviceOptions,
  ) {
    super(opts);
    this.now = opts.now ?? Date.now;
    definition.pins.forEach((p, i) => {
      if (p.mode === 'input') this.inputs.set(i + 1, { raw: 0, stable: 0, pendingSince: null, timer: undefined });
    });
    bus.on('open', this.onOpen);
    bus.on('down', this.onDown);
    bus.on('closing', this.onClosing);
    if (bus.board) void this.attach(bus.board);
  }

  protected get ctx() {
    return { device: this.id, bus: this.bus.id };
  }

  private readonly onOpen = (board: FiveBoard) => void this.attach(board);
  private readonly onDown = (err: DriverError) => this.detach(err);
  private readonly onClosing = () => {
    this.applyLight('off');
    this.led?.stop();
    this.led = undefined;
  };
  private disposed = false;
  private readRegistrations: { pin: number; cb: (v: number) => void }[] = [];

  /**
   * Let go of the board without closing it: a new config's device takes it over (the board is
   * not reopened, so an Arduino does not reset and no relay drops out).
   */
  dispose(): void {
    this.disposed = true;
    this.bus.off('open', this.onOpen).off('down', this.onDown).off('closing', this.onClosing);
    this.led?.stop();
    this.led = undefined;
    for (const st of this.inputs.values()) if (st.timer) clearTimeout(st.timer);
    const io = this.board?.io;
    for (const r of this.readRegistrations) io?.removeListener(`digital-read-${r.pin}`, r.cb);
    this.readRegistrations = [];
    this.board = undefined;
  }

  private pin(channel: number): PinSpec {
    const p = this.definition.pins[channel - 1];
    if (!p) throw new DriverError('invalid_argument', `channel must be 1..${this.definition.pins.length}, got ${channel}`, this.ctx);
    return p;
  }

  // ---------------------------------------------------------------- connection

  /** The board is (back) up: set every pin up, put the relays where they should be, go online. */
  private async attach(board: FiveBoard): Promise<void> {
    const five = await loadFive();
    if (this.disposed) return;
    this.board = board;
    this.readRegistrations = [];
    const io = board.io;
    const RelayCtor = five.Relay as unknown as new (o: object) => RelayLike;
    const LedCtor = five.Led as unknown as new (o: object) => LedLike;
    this.relays.clear();
    this.confirmed.clear();
    this.definition.pins.forEach((p, i) => {
      const ch = i + 1;
      if (p.mode === 'relay') {
        board.pinMode(p.pin, io.MODES.OUTPUT!);
        const relay = new RelayCtor({ pin: p.pin, type: p.type, board });
        this.relays.set(ch, relay);
        const on = this.bus.relayWanted.get(p.pin) ?? false;
        if (on) relay.close();
        else relay.open();
        this.confirmed.set(ch, on ? 1 : 0);
      } else {
        const pullupMode = io.MODES.PULLUP;
        if (p.pullup && pullupMode !== undefined) board.pinMode(p.pin, pullupMode);
        else {
          board.pinMode(p.pin, io.MODES.INPUT!);
          if (p.pullup) board.digitalWrite(p.pin, 1); // the classic way to enable the pull-up
        }
        const st = this.inputs.get(ch)!;
        // the level before any report: idle (not pressed)
        st.raw = st.stable = 0;
        st.pendingSince = null;
        const cb = (level: number) => this.onInputLevel(ch, p, level);
        this.readRegistrations.push({ pin: p.pin, cb });
        board.digitalRead(p.pin, cb);
      }
    });
    if (this.definition.statusLed !== undefined) {
      this.led = new LedCtor({ pin: this.definition.statusLed, board });
      const want = this.light;
      this.light = 'off';
      this.applyLight(want);
    }
    this.markSuccess();
  }

  private detach(err: DriverError): void {
    this.board = undefined;
    this.relays.clear();
    this.confirmed.clear();
    this.led?.stop(); // its blink timer would go on writing to the old board
    this.led = undefined;
    for (const st of this.inputs.values()) {
      if (st.timer) clearTimeout(st.timer);
      st.timer = undefined;
      st.pendingSince = null;
    }
    this.noteError(err);
    this.markOffline(); // an unplugged board is known at once, not after offlineAfter missed polls
  }

  private requireBoard(): FiveBoard {
    if (!this.board || !this.bus.isOpen) throw new DriverError('closed', `board on ${this.bus.address} is not connected`, this.ctx);
    return this.board;
  }

  // ---------------------------------------------------------------- inputs

  /** A report from the board: debounce it; an accepted change is a reading stamped with its start. */
  private onInputLevel(ch: number, p: PinSpec, level: number): void {
    const st = this.inputs.get(ch);
    if (!st || this.disposed) return;
    const raw = logicalOf(p, level);
    if (raw === st.raw) return; // firmata reports a whole port: other pins may have changed
    st.raw = raw;
    if (st.pendingSince === null) st.pendingSince = this.now();
    if (st.timer) clearTimeout(st.timer);
    const ms = this.opts.debounceMs?.[ch] ?? 50;
    const settle = () => {
      st.timer = undefined;
      const since = st.pendingSince;
      st.pendingSince = null;
      if (st.raw === st.stable || since === null) return; // a glitch shorter than the debounce
      st.stable = st.raw;
      this.emit('push', this.snapshot(), since);
    };
    if (ms <= 0) settle();
    else st.timer = setTimeout(settle, ms);
  }

  // ---------------------------------------------------------------- DeviceClient's shape

  private snapshot(): Values {
    const v: Values = {};
    this.definition.pins.forEach((p, i) => {
      const ch = i + 1;
      if (p.mode === 'input') v[channelMetric(ch)] = this.inputs.get(ch)!.stable;
      else {
        const c = this.confirmed.get(ch);
        if (c !== undefined) v[channelMetric(ch)] = c;
      }
    });
    return v;
  }

  /** Ask the board for a pin's state (StandardFirmata answers PIN_STATE_QUERY with the output level). */
  private queryLevel(board: FiveBoard, pin: number): Promise<number> {
    const io = board.io;
    const ms = this.opts.timeoutMs ?? this.bus.timeoutMs;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DriverError('timeout', `pin ${pin}: no pin state within ${ms} ms`, this.ctx)), ms);
      io.queryPinState(pin, () => {
        clearTimeout(timer);
        resolve(io.pins[pin]?.state ?? 0);
      });
    });
  }

  /** Every relay's confirmed state from the board, and every input's debounced state. */
  private async readAll(): Promise<Values> {
    const board = this.requireBoard();
    for (const [ch] of this.relays) {
      const level = await this.queryLevel(board, this.pin(ch).pin);
      this.confirmed.set(ch, logicalOf(this.pin(ch), level));
    }
    return this.snapshot();
  }

  async read(): Promise<Values> {
    try {
      const v = await this.counted(() => this.readAll());
      this.markSuccess();
      return v;
    } catch (e) {
      this.markMiss();
      throw e;
    }
  }

  /** Switch relay channel `channel` (from 1); resolves with the state the board confirms. */
  async writeChannel(channel: number, on: boolean): Promise<boolean> {
    const p = this.pin(channel);
    if (p.mode !== 'relay') throw new DriverError('invalid_argument', `channel ${channel} (pin ${p.pin}) is an input, not a relay`, this.ctx);
    this.bus.relayWanted.set(p.pin, on);
    return this.counted(async () => {
      const board = this.requireBoard();
      const relay = this.relays.get(channel)!;
      if (on) relay.close();
      else relay.open();
      const level = await this.queryLevel(board, p.pin);
      const got = logicalOf(p, level);
      this.confirmed.set(channel, got);
      return got === 1;
    });
  }

  /** Every channel's state: index 0 is channel 1. */
  async readChannels(): Promise<boolean[]> {
    const v = await this.counted(() => this.readAll());
    return this.definition.pins.map((_, i) => v[channelMetric(i + 1)] === 1);
  }

  /** The status light: steady, slow or fast blink, or off. Kept across reconnects. */
  setLight(pattern: LightPattern): void {
    if (this.definition.statusLed === undefined) return;
    this.applyLight(pattern);
  }

  get lightPattern(): LightPattern {
    return this.light;
  }

  private applyLight(pattern: LightPattern): void {
    if (pattern === this.light) return;
    this.light = pattern;
    const led = this.led;
    if (!led) return;
    led.stop();
    if (pattern === 'on') led.on();
    else if (pattern === 'off') led.off();
    else led.blink(BLINK_MS[pattern]);
  }
}
