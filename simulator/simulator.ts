/**
 * The simulator: virtual devices from a scenario, served over any mix of Modbus TCP, RTU over a
 * transparent TCP server, a real pty, and the in-process serialport mock binding; plus a control API.
 */
import { SerialPortMock } from 'serialport';
import type { BindingInterface } from '../drivers/transports/link.js';
import type { GenericModbusConfig } from '../drivers/devices/generic-modbus.js';
import { ControlApi } from './control-api.js';
import { FAULT_PATTERN, type Scenario } from './scenario.js';
import { SerialSlave, type SimClock } from './serial-slave.js';
import { ModbusTcpServer } from './tcp-server.js';
import { PtyPair } from './pty.js';
import { VirtualDevice } from './virtual-device.js';
import { VirtualBoard } from './virtual-board.js';
import { FirmataWire } from './firmata-wire.js';
import type { FirmataIoFactory } from '../drivers/firmata.js';
import type { SerialLink } from '../drivers/transports/link.js';

export interface SimulatorOptions {
  /** Wall clock in ms (tests pass a fake). */
  nowMs?: () => number;
  /** Delay serial replies by their wire time (default true). */
  wireTime?: boolean;
  /** How often line-level faults (`disconnect` on a pty) are checked, ms. */
  faultPollMs?: number;
}

interface PtyEndpoint {
  pair: PtyPair;
  line: string;
  link?: SerialLink;
  slave?: SerialSlave;
  unplugged: boolean;
  /** Unplugged by a `disconnect` fault (replugged when it ends), not by hand. */
  faultUnplug?: boolean;
}

interface BoardPty {
  board: VirtualBoard;
  pair: PtyPair;
  line: string;
  link?: SerialLink;
  wire?: FirmataWire;
}

const MockBinding = SerialPortMock.binding;

export class Simulator {
  readonly devices: VirtualDevice[];
  readonly clock: SimClock;
  private readonly nowMs: () => number;
  private readonly startMs: number;
  private readonly tcpServers: ModbusTcpServer[] = [];
  private readonly ptys: PtyEndpoint[] = [];
  private readonly mockLines = new Map<string, string>();
  /** Virtual Firmata boards by serial path. */
  private readonly boards = new Map<string, VirtualBoard>();
  /** Virtual boards speaking StandardFirmata on a pty. */
  private readonly boardPtys: BoardPty[] = [];
  private control: ControlApi | undefined;
  private faultTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly scenario: Scenario,
    private readonly opts: SimulatorOptions = {},
  ) {
    this.nowMs = opts.nowMs ?? Date.now;
    this.startMs = this.nowMs();
    this.clock = { now: () => ({ t: (this.nowMs() - this.startMs) / 1000, wallMs: this.nowMs() }) };
    this.devices = scenario.devices.map(
      (d) =>
        new VirtualDevice({
          id: d.id,
          driver: d.driver,
          unit: d.unit,
          line: d.line,
          baudRate: d.baudRate,
          unmapped: d.unmapped,
          values: d.values,
          seed: scenario.seed,
          generic: { registers: d.registers as GenericModbusConfig['registers'], coils: d.coils, discreteInputs: d.discreteInputs, pins: d.pins, statusLed: d.statusLed },
        }),
    );
    for (const f of scenario.faults) this.device(f.device)!.addFault(f.fault, f.fromS, f.toS);
  }

  device(id: string): VirtualDevice | undefined {
    return this.devices.find((d) => d.id === id);
  }

  devicesOn(line: string): VirtualDevice[] {
    return this.devices.filter((d) => d.line === line);
  }

  /** Scenario time in seconds. */
  get t(): number {
    return this.clock.now().t;
  }

  lineBaud(line: string): number {
    return this.devicesOn(line)[0]?.baudRate ?? 9600;
  }

  // ------------------------------------------------------------ run-time control

  /** Override metric values (null removes the override and returns to the scenario). */
  setValues(id: string, values: Record<string, number | null>): void {
    const dev = this.device(id);
    if (!dev) throw new Error(`no device "${id}"`);
    const known = dev.metricNames();
    for (const [k, v] of Object.entries(values)) {
      if (!known.includes(k)) throw new Error(`${id} has no metric "${k}"; it has ${known.join(', ')}`);
      if (v === null) delete dev.overrides[k];
      else if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${id}.${k}: expected a number or null`);
      else dev.overrides[k] = v;
    }
  }

  /** Replace a device's faults with `names`, active now and for `forS` seconds (or until changed). */
  setFaults(id: string, names: string[], forS?: number): void {
    const dev = this.device(id);
    if (!dev) throw new Error(`no device "${id}"`);
    for (const n of names) if (!FAULT_PATTERN.test(n)) throw new Error(`unknown fault "${n}"`);
    const t = this.t;
    dev.faults = [];
    for (const n of names) dev.addFault(n, t, forS === undefined ? undefined : t + forS);
    this.checkLineFaults();
  }

  describeDevice(d: VirtualDevice) {
    const { t, wallMs } = this.clock.now();
    return {
      id: d.id,
      driver: d.definition.name,
      unit: d.unit,
      line: d.line,
      values: d.values(t, wallMs),
      overrides: { ...d.overrides },
      faults: d.activeFaults(t).map((f) => (f.kind === 'exception' ? `exception:${f.code}` : f.kind === 'slow' ? `slow:${f.ms}` : f.kind)),
      stats: { ...d.stats },
    };
  }

  describe() {
    return this.devices.map((d) => this.describeDevice(d));
  }

  // ------------------------------------------------------------ transports

  /** Modbus TCP server for every Modbus device (routed by unit id); `line` narrows it to one line. */
  async serveTcp(host: string, port: number, line?: string): Promise<ModbusTcpServer> {
    const server = new ModbusTcpServer({ host, port, clock: this.clock, devices: () => (line ? this.devicesOn(line) : this.devices) });
    await server.start();
    this.tcpServers.push(server);
    this.startFaultWatch();
    return server;
  }

  /** A transparent serial server: RTU frames over TCP, with the line's wire time. */
  async serveRtuOverTcp(host: string, port: number, line = 'main'): Promise<ModbusTcpServer> {
    const server = new ModbusTcpServer({
      host,
      port,
      clock: this.clock,
      devices: () => this.devicesOn(line),
      framing: 'rtu-over-tcp',
      baudRate: this.lineBaud(line),
    });
    await server.start();
    this.tcpServers.push(server);
    return server;
  }

  /** Serve `line` on a real pty at `path` (needs socat). */
  async servePty(path: string, line = 'main'): Promise<void> {
    const ep: PtyEndpoint = { pair: new PtyPair(path), line, unplugged: false };
    this.ptys.push(ep);
    await this.plugPty(ep);
    this.startFaultWatch();
  }

  private async plugPty(ep: PtyEndpoint): Promise<void> {
    await ep.pair.start();
    const link = await ep.pair.openSimEnd(this.lineBaud(ep.line));
    const slave = new SerialSlave({
      devices: () => this.devicesOn(ep.line),
      clock: this.clock,
      baudRate: this.lineBaud(ep.line),
      wireTime: this.opts.wireTime,
      send: (d) => link.write(d),
    });
    link.on('data', (d) => slave.receive(d));
    ep.link = link;
    ep.slave = slave;
    ep.unplugged = false;
  }

  private async unplugEndpoint(ep: PtyEndpoint): Promise<void> {
    ep.unplugged = true;
    ep.slave?.reset();
    await ep.link?.close().catch(() => undefined);
    await ep.pair.stop();
  }

  /** Make the pty of `line` vanish, as a pulled USB adapter does. */
  async unplug(line = 'main'): Promise<void> {
    for (const b of this.boards.values()) if (b.device.line === line) b.unplug();
    for (const ep of this.boardPtys) if (ep.line === line && ep.wire) await this.unplugBoardPty(ep);
    for (const ep of this.ptys.filter((e) => e.line === line && !e.unplugged)) await this.unplugEndpoint(ep);
    for (const s of this.tcpServers) s.dropConnections();
  }

  /** Bring an unplugged pty back under the same path. */
  async replug(line = 'main'): Promise<void> {
    for (const b of this.boards.values()) if (b.device.line === line) b.replug();
    for (const ep of this.boardPtys) if (ep.line === line && !ep.wire) await this.plugBoardPty(ep);
    for (const ep of this.ptys.filter((e) => e.line === line && e.unplugged)) await this.plugPty(ep);
  }

  /** Register an in-process mock serial port at `path` for `line`; open it through `this.binding`. */
  serveMock(path: string, line = 'main'): void {
    MockBinding.createPort(path, { echo: false, record: false });
    this.mockLines.set(path, line);
  }

  /**
   * Serve the firmata-io device on `line` as a virtual board at serial `path`; the gateway reaches
   * it through `this.firmataIo` (its Firmata bus's IO factory).
   */
  serveFirmata(path: string, line = 'io'): VirtualBoard {
    const dev = this.devicesOn(line).find((d) => d.definition.kind === 'firmata');
    if (!dev) throw new Error(`no firmata-io device on line "${line}" in this scenario`);
    const board = new VirtualBoard(dev, this.clock);
    this.boards.set(path, board);
    this.startFaultWatch();
    return board;
  }

  /**
   * Serve the firmata-io device on `line` as a board speaking StandardFirmata on a real pty at
   * `path` (needs socat): the gateway opens it as it opens a real Arduino.
   */
  async serveFirmataPty(path: string, line = 'io'): Promise<VirtualBoard> {
    const dev = this.devicesOn(line).find((d) => d.definition.kind === 'firmata');
    if (!dev) throw new Error(`no firmata-io device on line "${line}" in this scenario`);
    const board = this.board(dev.id) ?? new VirtualBoard(dev, this.clock);
    const ep: BoardPty = { board, pair: new PtyPair(path), line };
    this.boardPtys.push(ep);
    await this.plugBoardPty(ep);
    this.startFaultWatch();
    return board;
  }

  private async plugBoardPty(ep: BoardPty): Promise<void> {
    ep.board.replug();
    await ep.pair.start();
    const link = await ep.pair.openSimEnd(57_600);
    const wire = new FirmataWire(ep.board, (d) => link.write(d));
    link.on('data', (d) => wire.receive(d));
    ep.link = link;
    ep.wire = wire;
  }

  private async unplugBoardPty(ep: BoardPty): Promise<void> {
    ep.wire?.close();
    ep.wire = undefined;
    ep.board.unplug();
    await ep.link?.close().catch(() => undefined);
    ep.link = undefined;
    await ep.pair.stop();
  }

  /** The virtual board of device `id`. */
  board(id: string): VirtualBoard | undefined {
    return [...this.boards.values(), ...this.boardPtys.map((e) => e.board)].find((b) => b.device.id === id);
  }

  /** An IO factory for FirmataBus: opens the virtual board served at a path. */
  get firmataIo(): FirmataIoFactory {
    return (path: string) => {
      const board = this.boards.get(path);
      if (!board) throw new Error(`no such device ${path}`);
      return board.connect();
    };
  }

  /**
   * A serialport binding: the ordinary mock binding, except that ports registered with serveMock
   * have the simulator at their far end.
   */
  get binding(): BindingInterface {
    const sim = this;
    return {
      list: () => MockBinding.list(),
      async open(options: Parameters<typeof MockBinding.open>[0]) {
        const port = await MockBinding.open(options);
        const line = sim.mockLines.get(options.path);
        if (line === undefined) return port;
        const slave = new SerialSlave({
          devices: () => sim.devicesOn(line),
          clock: sim.clock,
          baudRate: sim.lineBaud(line),
          wireTime: sim.opts.wireTime,
          send: (d) => {
            if (port.isOpen) port.emitData(d);
          },
        });
        const write = port.write.bind(port);
        port.write = async (buf: Buffer) => {
          await write(buf);
          slave.receive(Buffer.from(buf));
        };
        const close = port.close.bind(port);
        port.close = async () => {
          slave.reset();
          await close();
        };
        return port;
      },
    } as BindingInterface;
  }

  /** Line-level faults: a device with `disconnect` takes its pty away for the fault's window. */
  private startFaultWatch(): void {
    if (this.faultTimer) return;
    this.faultTimer = setInterval(() => this.checkLineFaults(), this.opts.faultPollMs ?? 200);
    this.faultTimer.unref();
  }

  private checking = false;
  private checkLineFaults(): void {
    if (this.checking) return;
    this.checking = true;
    const t = this.t;
    const work: Promise<void>[] = [];
    for (const ep of this.ptys) {
      const wantDown = this.devicesOn(ep.line).some((d) => d.activeFaults(t).some((f) => f.kind === 'disconnect'));
      if (wantDown && !ep.unplugged) {
        ep.faultUnplug = true;
        work.push(this.unplugEndpoint(ep));
      } else if (!wantDown && ep.unplugged && ep.faultUnplug) {
        ep.faultUnplug = false;
        work.push(this.plugPty(ep));
      }
    }
    for (const ep of this.boardPtys) {
      const wantDown = ep.board.device.activeFaults(t).some((f) => f.kind === 'disconnect');
      if (wantDown && ep.wire) {
        ep.board.faultUnplug = true;
        work.push(this.unplugBoardPty(ep));
      } else if (!wantDown && !ep.wire && ep.board.faultUnplug) {
        ep.board.faultUnplug = false;
        work.push(this.plugBoardPty(ep));
      }
    }
    for (const b of this.boards.values()) {
      const wantDown = b.device.activeFaults(t).some((f) => f.kind === 'disconnect');
      if (wantDown && !b.unplugged) {
        b.faultUnplug = true;
        b.unplug();
      } else if (!wantDown && b.unplugged && b.faultUnplug) {
        b.faultUnplug = false;
        b.replug();
      }
    }
    void Promise.all(work).finally(() => (this.checking = false));
  }

  async startControl(host: string, port: number): Promise<ControlApi> {
    this.control = new ControlApi(this);
    await this.control.start(host, port);
    return this.control;
  }

  async stop(): Promise<void> {
    if (this.faultTimer) clearInterval(this.faultTimer);
    this.faultTimer = undefined;
    await this.control?.stop();
    for (const b of this.boards.values()) b.stop();
    for (const ep of this.boardPtys) {
      ep.wire?.close();
      ep.board.stop();
      await ep.link?.close().catch(() => undefined);
      await ep.pair.stop();
    }
    await Promise.all(this.tcpServers.map((s) => s.stop()));
    for (const ep of this.ptys) {
      ep.slave?.reset();
      await ep.link?.close().catch(() => undefined);
      await ep.pair.stop();
    }
  }
}
