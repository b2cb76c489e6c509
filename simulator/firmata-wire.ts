/**
 * The virtual board's StandardFirmata on the wire: the bytes an Arduino running StandardFirmata
 * 2.5 exchanges with firmata.js, for a virtual board served on a real pty. The gateway then opens
 * it exactly as it opens a real board (johnny-five → firmata.js → the native serialport binding).
 *
 * Spoken: version report and firmware query, capability and analog-mapping queries (an Uno's 20
 * pins), pin modes, digital port writes and single-pin writes, digital port reporting (a port is
 * reported when reporting is switched on and whenever one of its input pins changes), pin-state
 * queries, analog writes; other sysex commands are ignored, as the firmware ignores what it does
 * not know. A real Uno resets when the host opens its port and then announces its version, which
firmata.js waits for; a pty shows no open, so the virtual board announces itself whenever the
host has been silent for a second (extra announcements are harmless to a connected host).
 */
import type { VirtualBoard } from './virtual-board.js';

const REPORT_VERSION = 0xf9;
const START_SYSEX = 0xf0;
const END_SYSEX = 0xf7;
const PIN_MODE = 0xf4;
const SET_DIGITAL_PIN_VALUE = 0xf5;
const DIGITAL_MESSAGE = 0x90;
const ANALOG_MESSAGE = 0xe0;
const REPORT_ANALOG = 0xc0;
const REPORT_DIGITAL = 0xd0;
const SYSTEM_RESET = 0xff;
const QUERY_FIRMWARE = 0x79;
const CAPABILITY_QUERY = 0x6b;
const CAPABILITY_RESPONSE = 0x6c;
const ANALOG_MAPPING_QUERY = 0x69;
const ANALOG_MAPPING_RESPONSE = 0x6a;
const PIN_STATE_QUERY = 0x6d;
const PIN_STATE_RESPONSE = 0x6e;

const MODE = { INPUT: 0, OUTPUT: 1, ANALOG: 2, PWM: 3, PULLUP: 0x0b } as const;
/** An Uno: digital pins 0–13 (PWM on 3, 5, 6, 9, 10, 11), analog pins 14–19 (A0–A5). */
const PIN_COUNT = 20;
const PWM_PINS = new Set([3, 5, 6, 9, 10, 11]);
const VERSION = [2, 5];
const FIRMWARE = 'StandardFirmata.ino';

function capabilities(pin: number): [number, number][] {
  const c: [number, number][] = [
    [MODE.INPUT, 1],
    [MODE.OUTPUT, 1],
    [MODE.PULLUP, 1],
  ];
  if (PWM_PINS.has(pin)) c.push([MODE.PWM, 8]);
  if (pin >= 14) c.push([MODE.ANALOG, 10]);
  return c;
}

/** Length of the (non-sysex) message starting with `cmd`, or 0 for an unknown byte. */
function messageLength(cmd: number): number {
  if (cmd === REPORT_VERSION || cmd === SYSTEM_RESET) return 1;
  if (cmd === PIN_MODE || cmd === SET_DIGITAL_PIN_VALUE) return 3;
  const hi = cmd & 0xf0;
  if (hi === DIGITAL_MESSAGE || hi === ANALOG_MESSAGE) return 3;
  if (hi === REPORT_DIGITAL || hi === REPORT_ANALOG) return 2;
  return 0;
}

export class FirmataWire {
  private rx: number[] = [];
  private modes = new Map<number, number>();
  private reporting = new Set<number>();
  private announcer: NodeJS.Timeout | undefined;
  private lastRx = 0;
  private unsubscribe: () => void;
  readonly stats = { messages: 0, ignored: 0 };

  constructor(
    private readonly board: VirtualBoard,
    private readonly send: (bytes: Buffer) => void,
    announceMs = 300,
  ) {
    board.beginSession();
    this.unsubscribe = board.onInput((pin) => {
      const port = pin >> 3;
      if (this.reporting.has(port)) this.reportPort(port);
    });
    // a reset board says who it is; firmata.js waits for that before it asks anything
    this.announce();
    this.announcer = setInterval(() => {
      if (performance.now() - this.lastRx > 1000) this.announce();
    }, announceMs);
    this.announcer.unref();
  }

  private announce(): void {
    this.send(Buffer.from([REPORT_VERSION, ...VERSION]));
    this.sendFirmware();
  }

  private sendFirmware(): void {
    const name = [...Buffer.from(FIRMWARE)].flatMap((b) => [b & 0x7f, (b >> 7) & 0x7f]);
    this.send(Buffer.from([START_SYSEX, QUERY_FIRMWARE, ...VERSION, ...name, END_SYSEX]));
  }

  /** Bytes from the host. */
  receive(data: Buffer): void {
    this.lastRx = performance.now();
    for (const b of data) this.rx.push(b);
    for (;;) {
      if (!this.rx.length) return;
      const cmd = this.rx[0]!;
      if (cmd === START_SYSEX) {
        const end = this.rx.indexOf(END_SYSEX);
        if (end < 0) return;
        this.sysex(this.rx.slice(1, end));
        this.rx.splice(0, end + 1);
        continue;
      }
      const n = messageLength(cmd);
      if (n === 0) {
        this.stats.ignored++;
        this.rx.shift(); // a stray data byte
        continue;
      }
      if (this.rx.length < n) return;
      this.message(this.rx.splice(0, n));
    }
  }

  private message(m: number[]): void {
    this.stats.messages++;
    const cmd = m[0]!;
    const hi = cmd & 0xf0;
    if (cmd === REPORT_VERSION) this.send(Buffer.from([REPORT_VERSION, ...VERSION]));
    else if (cmd === SYSTEM_RESET) {
      this.modes.clear();
      this.reporting.clear();
    } else if (cmd === PIN_MODE) this.modes.set(m[1]!, m[2]!);
    else if (cmd === SET_DIGITAL_PIN_VALUE) this.writeIfOutput(m[1]!, m[2]! ? 1 : 0);
    else if (hi === DIGITAL_MESSAGE) {
      const port = cmd & 0x0f;
      const value = m[1]! | (m[2]! << 7);
      for (let i = 0; i < 8; i++) this.writeIfOutput(port * 8 + i, (value >> i) & 1, true);
    } else if (hi === ANALOG_MESSAGE) this.board.writePin(cmd & 0x0f, m[1]! | (m[2]! << 7));
    else if (hi === REPORT_DIGITAL) {
      const port = cmd & 0x0f;
      if (m[1]) {
        this.reporting.add(port);
        this.reportPort(port); // StandardFirmata reports the port at once
      } else this.reporting.delete(port);
    }
  }

  /** A write reaches only output pins; a port write counts for the pins whose level it changes. */
  private writeIfOutput(pin: number, value: number, onlyChanges = false): void {
    const mode = this.modes.get(pin);
    if (mode !== MODE.OUTPUT && mode !== MODE.PWM) return; // on an input, HIGH means the pull-up
    if (onlyChanges && this.board.pinState(pin) === value) return;
    this.board.writePin(pin, value);
  }

  private reportPort(port: number): void {
    let value = 0;
    for (let i = 0; i < 8; i++) {
      const pin = port * 8 + i;
      const mode = this.modes.get(pin);
      if (mode === MODE.INPUT || mode === MODE.PULLUP) value |= this.board.readInput(pin) << i;
    }
    this.send(Buffer.from([DIGITAL_MESSAGE | port, value & 0x7f, (value >> 7) & 0x7f]));
  }

  private sysex(body: number[]): void {
    this.stats.messages++;
    const [cmd, ...args] = body;
    switch (cmd) {
      case QUERY_FIRMWARE:
        return this.sendFirmware();
      case CAPABILITY_QUERY: {
        const out = [START_SYSEX, CAPABILITY_RESPONSE];
        for (let pin = 0; pin < PIN_COUNT; pin++) out.push(...capabilities(pin).flat(), 0x7f);
        out.push(END_SYSEX);
        return this.send(Buffer.from(out));
      }
      case ANALOG_MAPPING_QUERY: {
        const map = Array.from({ length: PIN_COUNT }, (_, pin) => (pin >= 14 ? pin - 14 : 0x7f));
        return this.send(Buffer.from([START_SYSEX, ANALOG_MAPPING_RESPONSE, ...map, END_SYSEX]));
      }
      case PIN_STATE_QUERY: {
        const pin = args[0] ?? 0;
        const mode = this.modes.get(pin) ?? MODE.OUTPUT;
        const state = mode === MODE.PULLUP ? 1 : this.board.pinState(pin);
        return this.send(Buffer.from([START_SYSEX, PIN_STATE_RESPONSE, pin, mode, state & 0x7f, END_SYSEX]));
      }
      default:
        this.stats.ignored++; // sampling interval, I2C, serial…: nothing to do for this board
    }
  }

  close(): void {
    if (this.announcer) clearInterval(this.announcer);
    this.announcer = undefined;
    this.unsubscribe();
  }
}
