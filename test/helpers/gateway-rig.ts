/**
 * End-to-end rigs: the simulator on a scenario, a real broker (aedes in-process or mosquitto), the
 * gateway, and an MQTT subscriber that keeps everything it receives. Only time is faked: a scaled
 * clock shared by the simulator and the gateway runs a scenario's quarter hour in seconds.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../gateway/broker.js';
import { resolveConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { loadScenario, parseScenario } from '../../simulator/scenario.js';
import type { VirtualDevice } from '../../simulator/virtual-device.js';
import { parse as parseYaml } from 'yaml';
import { Simulator } from '../../simulator/simulator.js';
import { freePort, requireTool, uniquePath, waitFor } from './system.js';

export const ROOT = path.resolve(__dirname, '../..');

/** 10:00 on a June day in Zhengzhou: daytime noise limits, no earthwork ban. */
export const JUNE_10AM = Date.parse('2026-06-01T10:00:00+08:00');

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A clock running `factor` times faster than the wall clock, from `startMs`. */
export function scaledClock(factor: number, startMs = Date.now(), o: { held?: boolean } = {}): (() => number) & { release(): void } {
  let real0 = o.held ? undefined : Date.now();
  const now = () => (real0 === undefined ? startMs : startMs + (Date.now() - real0) * factor);
  /** A held clock stands at startMs until released: scenario time starts when the gateway is up. */
  return Object.assign(now, {
    release() {
      real0 ??= Date.now();
    },
  });
}

export interface Received {
  topic: string;
  payload: Record<string, unknown>;
  retain: boolean;
}

export class Subscriber {
  readonly messages: Received[] = [];
  constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      try {
        this.messages.push({ topic, payload: JSON.parse(payload.toString()) as Record<string, unknown>, retain: packet.retain });
      } catch {
        this.messages.push({ topic, payload: { raw: payload.toString() }, retain: packet.retain });
      }
    });
  }

  static async connect(url: string, topic = 'dustgate/#', opts: mqtt.IClientOptions = {}): Promise<Subscriber> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 100, ...opts });
    const s = new Subscriber(client);
    await client.subscribeAsync(topic, { qos: 1 });
    return s;
  }

  on(suffix: string): Received[] {
    return this.messages.filter((m) => m.topic.endsWith(`/${suffix}`));
  }

  events(type?: string): Record<string, unknown>[] {
    const all = this.on('events').flatMap((m) => m.payload.events as Record<string, unknown>[]);
    return type ? all.filter((e) => e.type === type) : all;
  }

  readings(device?: string): Record<string, unknown>[] {
    const all = this.on('telemetry').flatMap((m) => m.payload.readings as Record<string, unknown>[]);
    return device ? all.filter((r) => r.device === device) : all;
  }

  /** Every seq received (telemetry, events and aggregates), in arrival order. */
  seqs(): number[] {
    return this.messages
      .filter((m) => m.topic.endsWith('/telemetry') || m.topic.endsWith('/events') || m.topic.endsWith('/aggregates'))
      .flatMap((m) => (m.topic.endsWith('/aggregates') ? [m.payload as { seq: number }] : ((m.payload.readings ?? m.payload.events) as { seq: number }[])).map((r) => r.seq));
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** Assert the SPEC §7 guarantee on what a subscriber holds: every seq from first to last, first copies in order. */
export function checkNoLoss(seqs: number[]): { first: number; last: number; unique: number; duplicates: number } {
  const seen = new Set<number>();
  const firsts: number[] = [];
  for (const s of seqs) {
    if (seen.has(s)) continue;
    seen.add(s);
    firsts.push(s);
  }
  for (let i = 1; i < firsts.length; i++)
    if (firsts[i]! <= firsts[i - 1]!) throw new Error(`seq ${firsts[i]} arrived after ${firsts[i - 1]} (out of order)`);
  const first = firsts[0] ?? 0;
  const last = firsts[firsts.length - 1] ?? 0;
  const missing: number[] = [];
  for (let s = first; s <= last; s++) if (!seen.has(s)) missing.push(s);
  if (missing.length) throw new Error(`${missing.length} seqs missing between ${first} and ${last}: ${missing.slice(0, 20).join(', ')}`);
  return { first, last, unique: firsts.length, duplicates: seqs.length - firsts.length };
}

export function tempDir(tag: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `dustgate-${tag}-`));
}

/** Where the site's relays and inputs are: a Modbus relay and DI module, or an Arduino's pins. */
export type IoKind = 'modbus' | 'firmata';

/**
 * The test Arduino: relays on pins 7, 8, 9 (channels 1–3, the camera's through an active-low
 * module), the gate camera's contact on pin 2 with the pull-up (channel 4), the earthwork
 * contact on pin 3 (channel 5), the status light on pin 13.
 */
export const BOARD_PINS = [
  { pin: 7, mode: 'relay' },
  { pin: 8, mode: 'relay' },
  { pin: 9, mode: 'relay', type: 'NC' },
  { pin: 2, mode: 'input', pullup: true },
  { pin: 3, mode: 'input' },
] as const;
export const BOARD_LED = 13;
/** Channel of each logical output and input on each kind of IO. */
export const IO_LAYOUT = {
  modbus: { outDevice: 'relays', inDevice: 'dio', sprinkler: 1, sweepStopSignal: 2, cameraTrigger: 3, gateCamera: 1, earthwork: 2 },
  firmata: { outDevice: 'board', inDevice: 'board', sprinkler: 1, sweepStopSignal: 2, cameraTrigger: 3, gateCamera: 4, earthwork: 5 },
} as const;

/** The usual test site: head, relays, dio on one line (or head on the line and an Arduino), outputs and inputs as in the demo. */
export function siteConfig(o: {
  bus: Record<string, unknown>;
  mqttUrl: string;
  dir: string;
  rules?: Record<string, unknown>;
  pollMs?: number;
  extra?: Record<string, unknown>;
  /** devices after the standard ones */
  moreDevices?: Record<string, unknown>[];
  id?: string;
  io?: IoKind;
  /** firmata: the board's serial path */
  boardPath?: string;
}) {
  const poll = o.pollMs ?? 100;
  const io = o.io ?? 'modbus';
  const L = IO_LAYOUT[io];
  const ioDevices =
    io === 'modbus'
      ? [
          { id: 'relays', bus: 'main', unit: 2, driver: 'waveshare-relay-8ch', pollMs: poll * 2 },
          { id: 'dio', bus: 'main', unit: 3, driver: 'waveshare-di-8ch', pollMs: Math.max(50, poll / 2) },
        ]
      : [{ id: 'board', bus: 'io', driver: 'firmata-io', pollMs: poll * 2, pins: BOARD_PINS, statusLed: BOARD_LED }];
  return {
    gateway: { id: o.id ?? 'test-site-0001', site: { name: 'test', kind: 'construction', city: 'zhengzhou' } },
    buses: [{ id: 'main', timeoutMs: 300, ...o.bus }, ...(io === 'firmata' ? [{ id: 'io', type: 'firmata', path: o.boardPath }] : [])],
    devices: [{ id: 'head', bus: 'main', unit: 1, driver: 'cwt-weather-station', pollMs: poll }, ...ioDevices, ...(o.moreDevices ?? [])],
    outputs: {
      sprinkler: { device: L.outDevice, channel: L.sprinkler, kind: 'road' },
      sweepStopSignal: { device: L.outDevice, channel: L.sweepStopSignal },
      cameraTrigger: { device: L.outDevice, channel: L.cameraTrigger, pulseMs: 500 },
    },
    inputs: {
      gateCamera: { device: L.inDevice, channel: L.gateCamera, kind: 'video-trigger', debounceMs: 50 },
      earthwork: { device: L.inDevice, channel: L.earthwork, kind: 'earthwork-activity' },
    },
    rules: o.rules ?? {},
    storage: { path: path.join(o.dir, 'buffer.db'), maxMB: 64 },
    http: { port: 0 },
    // reconnects wait a random time under this ceiling (full jitter): tests that stop the broker keep it short
    mqtt: { url: o.mqttUrl, topicPrefix: 'dustgate', group: 'zhengzhou', maxBatch: 500, reconnectMaxS: 2 },
    ...o.extra,
  };
}

export interface InProcessRig {
  io: IoKind;
  /** firmata: the board's serial path */
  boardPath: string;
  /** The simulated device holding the relays (its coil log is what the gateway really switched). */
  relays: VirtualDevice;
  sim: Simulator;
  broker: EmbeddedBroker;
  gw: Gateway;
  sub: Subscriber;
  now: () => number;
  /** Scenario seconds now. */
  t(): number;
  /** Step the gateway's system clock (its monotonic clock and the simulator's time run on). */
  stepClock(ms: number): void;
  stop(): Promise<void>;
}

/**
 * A scenario with its relay and DI modules' part played by an Arduino instead: the board takes the
 * DI module's input values (channel 1 → the gate camera's pin, 2 → the earthwork pin).
 */
export function withBoard(raw: { devices: { id: string; values?: Record<string, unknown> }[] }) {
  const dio = raw.devices.find((d) => d.id === 'dio');
  const values: Record<string, unknown> = {};
  if (dio?.values?.ch1 !== undefined) values[`ch${IO_LAYOUT.firmata.gateCamera}`] = dio.values.ch1;
  if (dio?.values?.ch2 !== undefined) values[`ch${IO_LAYOUT.firmata.earthwork}`] = dio.values.ch2;
  return {
    ...raw,
    devices: [
      ...raw.devices.filter((d) => d.id !== 'dio' && d.id !== 'relays'),
      { id: 'board', driver: 'firmata-io', line: 'io', pins: BOARD_PINS, statusLed: BOARD_LED, values },
    ],
  };
}

/** Scenario + aedes + gateway in this process, over the serialport mock binding (and a virtual Arduino), on a scaled clock. */
export async function startInProcess(
  scenario: string,
  o: {
    factor: number;
    rules?: Record<string, unknown>;
    pollMs?: number;
    startMs?: number;
    extra?: Record<string, unknown>;
    moreDevices?: Record<string, unknown>[];
    /** simulated devices added to the scenario's */
    moreSimDevices?: Record<string, unknown>[];
    /** what NTP says of the gateway's clock (the far end of gateway/clock-sync.ts) */
    clockSynced?: boolean;
    beforeStart?: (sim: Simulator) => void | Promise<void>;
    io?: IoKind;
    /** firmata: serve the board speaking StandardFirmata on a real pty, opened as a real Arduino is (firmata.js, native serialport) */
    boardOnPty?: boolean;
    /** the rules' heartbeat (default here 50 ms; the gateway's own default is 1000) */
    tickMs?: number;
  },
): Promise<InProcessRig> {
  const io = o.io ?? 'modbus';
  // the clock stands still while everything starts (a second of start-up would be a minute of a
  // scenario at 60×, and thin the samples its means are taken over), then runs
  const now = scaledClock(o.factor, o.startMs, { held: true });
  const file = path.join(ROOT, 'seeds/scenarios', `${scenario}.yaml`);
  const raw = parseYaml(readFileSync(file, 'utf8')) as { devices: { id: string; values?: Record<string, unknown> }[] };
  raw.devices.push(...((o.moreSimDevices ?? []) as { id: string }[]));
  const sc = parseScenario(io === 'firmata' ? withBoard(raw) : raw, file);
  const sim = new Simulator(sc, { nowMs: now, wireTime: false });
  const portPath = uniquePath('gw');
  sim.serveMock(portPath, 'main');
  const boardPath = o.boardOnPty ? path.join(tempDir('acm'), 'ttyACM0') : uniquePath('acm');
  if (io === 'firmata') {
    if (o.boardOnPty) await sim.serveFirmataPty(boardPath, 'io');
    else sim.serveFirmata(boardPath, 'io');
  }
  const broker = await startEmbeddedBroker('127.0.0.1', 0);
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const sub = await Subscriber.connect(url);
  const dir = tempDir(scenario);
  const loaded = resolveConfig(siteConfig({ bus: { type: 'rtu', path: portPath, baudRate: 9600, timeoutMs: 1000 }, mqttUrl: url, dir, rules: o.rules, pollMs: o.pollMs, extra: o.extra, moreDevices: o.moreDevices, io, boardPath }));
  await o.beforeStart?.(sim);
  // the gateway's system clock can be stepped; its monotonic clock is the scenario's own
  let offset = 0;
  const gw = new Gateway({
    loaded,
    now: () => now() + offset,
    mono: now,
    binding: sim.binding,
    firmataIo: o.boardOnPty ? undefined : sim.firmataIo,
    logger: pino({ level: 'error' }),
    tickMs: o.tickMs ?? 50,
    reopenMaxMs: io === 'firmata' ? 500 : undefined,
  });
  gw.clock.synced = o.clockSynced ?? true; // NTP has set the clock unless a test says otherwise
  await gw.start();
  now.release();
  return {
    io,
    boardPath,
    relays: sim.device(IO_LAYOUT[io].outDevice)!,
    sim,
    broker,
    gw,
    sub,
    now,
    t: () => sim.t,
    stepClock(ms: number) {
      offset += ms;
    },
    async stop() {
      await gw.stop();
      await sub.close();
      await sim.stop();
      await broker.stop();
    },
  };
}

/** A scenario's simulator serving Modbus TCP on a free loopback port; `onStop` gets its stop. */
export async function simOverTcp(scenario: string, onStop: (stop: () => Promise<void>) => void): Promise<{ sim: Simulator; port: number }> {
  const sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios', `${scenario}.yaml`)), { wireTime: false });
  const port = await freePort();
  await sim.serveTcp('127.0.0.1', port);
  onStop(() => sim.stop());
  return { sim, port };
}

// ------------------------------------------------------------------ mosquitto and child gateways

export interface Mosquitto {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A mosquitto of our own on a free loopback port; `persistence` keeps sessions across restarts. */
export async function startMosquitto(o: { persistence?: boolean; dir?: string; listeners?: (port: number) => string[]; port?: number } = {}): Promise<Mosquitto> {
  requireTool('mosquitto', ['-h']);
  const port = o.port ?? (await freePort());
  const dir = o.dir ?? tempDir('mosquitto');
  const conf = path.join(dir, 'mosquitto.conf');
  const listeners = o.listeners ? o.listeners(port) : [`listener ${port} 127.0.0.1`, 'allow_anonymous true'];
  writeFileSync(
    conf,
    // run as ourselves: started as root, mosquitto would switch to user mosquitto and could not read our files
    [...listeners, `user ${os.userInfo().username}`, `persistence ${o.persistence ? 'true' : 'false'}`, `persistence_location ${dir}/`, 'max_queued_messages 100000', 'log_dest none', ''].join('\n'),
  );
  let proc: ChildProcess | undefined;
  const m: Mosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async start() {
      proc = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
      await waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const s = net.connect(port, '127.0.0.1');
            s.once('connect', () => {
              s.destroy();
              resolve(true);
            });
            s.once('error', () => resolve(false));
          }),
        5000,
      );
    },
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    },
  };
  await m.start();
  return m;
}

export interface ChildGateway {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** `dustgate run --config FILE` as a child process (from source through tsx). */
export function spawnGateway(configFile: string, env: Record<string, string> = {}): ChildGateway {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'run', '--config', configFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DUSTGATE_LOG_LEVEL: 'info', ...env },
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, output: () => out, exited };
}

/** A CA, a server certificate for 127.0.0.1, and a client certificate (CN = name) for each client, all made with openssl. */
export function makePki(dir: string, clients: string[] = ['tls-site-0001']) {
  requireTool('openssl', ['version']);
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=dustgate test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
  const issue = (name: string, cn: string, ext: string) => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    writeFileSync(f(`${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
    return { cert: f(`${name}.pem`), key: f(`${name}.key`) };
  };
  const server = issue('server', '127.0.0.1', 'subjectAltName=IP:127.0.0.1');
  const out = Object.fromEntries(clients.map((c) => [c, issue(`client-${c}`, c, 'extendedKeyUsage=clientAuth')]));
  const first = out[clients[0]!]!;
  return { ca: f('ca.pem'), serverCert: server.cert, serverKey: server.key, clients: out, clientCert: first.cert, clientKey: first.key };
}
