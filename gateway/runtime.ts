/**
 * The part of the gateway that a config builds and a new config replaces: buses, device clients,
 * the poller and the output manager. The store, the uplink and the rules' state outlive it.
 */
import { Bus } from '../drivers/bus.js';
import { DeviceClient, type GatewayDevice } from '../drivers/device.js';
import { FirmataBus, FirmataDevice, type FirmataIoFactory } from '../drivers/firmata.js';
import type { DriverError } from '../drivers/errors.js';
import type { BindingInterface } from '../drivers/transports/link.js';
import { channelsOf, definitionOf, metricsOf } from './config/load.js';
import type { Config, Metric } from './config/schema.js';
import { metricNames } from './metrics.js';
import type { Logger } from './log.js';
import { OutputManager, type OutputFault } from './outputs.js';
import { Poller, type RawReading } from './poller.js';
import { ReportFilter } from './report-filter.js';

/** The device each rule metric is taken from: `sources`, else the first device that measures it. */
export function resolveSources(c: Config): Partial<Record<Metric, string>> {
  const out: Partial<Record<Metric, string>> = { ...c.sources };
  for (const m of metricNames() as Metric[]) {
    if (out[m]) continue;
    const d = c.devices.find((dev) => metricsOf(definitionOf(dev)).includes(m));
    if (d) out[m] = d.id;
  }
  return out;
}

/**
 * The inputs as the rules engine sees them. A Firmata board reports input edges itself and its
 * device debounces them (stamping each with the press time), so the engine takes those as they come.
 */
export function engineInputs(c: Config): Config['inputs'] {
  const firmata = new Set(c.devices.filter((d) => d.driver === 'firmata-io').map((d) => d.id));
  return Object.fromEntries(Object.entries(c.inputs).map(([n, i]) => [n, firmata.has(i.device) ? { ...i, debounceMs: 0 } : i]));
}

export interface RuntimeHooks {
  onReading(r: RawReading): void;
  onReadError(device: string, e: DriverError): void;
  /** no read in flight: the poll cycle's readings can be written */
  onCycleEnd(): void;
  onStatus(device: string, status: string): void;
  onFault(f: OutputFault): void;
}

export class Runtime {
  readonly buses = new Map<string, Bus | FirmataBus>();
  readonly devices = new Map<string, GatewayDevice>();
  /** Firmata boards with a status light. */
  readonly lights: FirmataDevice[] = [];
  readonly outputs: OutputManager;
  readonly poller: Poller;
  /** Metrics and channels of each device (flagged B when a poll fails). */
  readonly metricsOfDevice = new Map<string, string[]>();
  readonly deviceConfig = new Map<string, Config['devices'][number]>();
  /** Devices whose readings feed a rule: metric sources and input modules. */
  readonly ruleDevices = new Set<string>();
  readonly sources: Partial<Record<Metric, string>>;
  /** What of each poll goes to the uplink (report strategies). */
  readonly report: ReportFilter;
  /** Buses taken over from the runtime this one replaces: not closed by this one until adopted. */
  private readonly borrowed = new Set<FirmataBus>();

  constructor(
    readonly config: Config,
    o: {
      binding?: BindingInterface;
      firmataIo?: FirmataIoFactory;
      reopenMaxMs?: number;
      now: () => number;
      /** monotonic clock for the poll cadence */
      mono?: () => number;
      logger: Logger;
      /** Open Firmata buses of the runtime this one replaces, taken over when their settings are unchanged. */
      reuse?: Map<string, FirmataBus>;
    },
    hooks: RuntimeHooks,
  ) {
    for (const b of config.buses) {
      const reused = b.type === 'firmata' ? o.reuse?.get(b.id) : undefined;
      if (reused && JSON.stringify(reused.config) === JSON.stringify(b)) {
        this.buses.set(b.id, reused);
        this.borrowed.add(reused);
      } else if (b.type === 'firmata') this.buses.set(b.id, new FirmataBus(b, { io: o.firmataIo, reopenMaxMs: o.reopenMaxMs }));
      else this.buses.set(b.id, new Bus(b, { binding: o.binding, reopenMaxMs: o.reopenMaxMs }));
    }
    for (const d of config.devices) {
      const def = definitionOf(d);
      const bus = this.buses.get(d.bus)!;
      const opts = { id: d.id, unit: d.unit, pollMs: d.pollMs, offlineAfter: d.offlineAfter, timeoutMs: d.timeoutMs };
      let client: GatewayDevice;
      if (def.kind === 'firmata' && bus instanceof FirmataBus) {
        const debounceMs: Record<number, number> = {};
        for (const i of Object.values(config.inputs)) if (i.device === d.id) debounceMs[i.channel] = i.debounceMs;
        const board = new FirmataDevice(bus, def, { ...opts, debounceMs, now: o.now });
        if (def.statusLed !== undefined) this.lights.push(board);
        client = board;
      } else if (bus instanceof Bus) client = new DeviceClient(bus, def, opts);
      else throw new Error(`devices: ${d.id} (${d.driver}) cannot sit on firmata bus ${d.bus}`);
      this.devices.set(d.id, client);
      this.deviceConfig.set(d.id, d);
      const channels = Array.from({ length: channelsOf(def).count }, (_, i) => `ch${i + 1}`);
      this.metricsOfDevice.set(d.id, [...metricsOf(def), ...channels]);
      client.on('status', (status: string) => hooks.onStatus(d.id, status));
    }
    this.sources = resolveSources(config);
    this.report = new ReportFilter(new Map(config.devices.map((d) => [d.id, d.report])));
    for (const id of Object.values(this.sources)) this.ruleDevices.add(id);
    for (const i of Object.values(config.inputs)) this.ruleDevices.add(i.device);
    this.outputs = new OutputManager(config.outputs, this.devices, hooks.onFault, o.logger);
    this.poller = new Poller([...this.devices.values()], { now: o.now, mono: o.mono, logger: o.logger });
    this.poller.on('reading', hooks.onReading);
    this.poller.on('read-error', hooks.onReadError);
    this.poller.on('idle', hooks.onCycleEnd);
    this.poller.on('listener-error', (device: string, e: unknown) => o.logger.error({ device, err: String(e) }, `reading of ${device} not handled: ${String(e)}`));
  }

  /**
   * Open every bus. `strict`: a bus that does not open is an error naming it (a new config that
   * cannot start is rolled back); otherwise it keeps retrying in the background.
   */
  async open(strict: boolean): Promise<void> {
    await Promise.all([...this.buses.values()].map((b) => b.start()));
    if (!strict) return;
    const status = (bus: Bus | FirmataBus) =>
      bus instanceof FirmataBus ? { open: bus.isOpen, address: bus.address, error: bus.lastOpenError } : { open: bus.line.state === 'open', address: bus.line.address, error: bus.line.lastOpenError };
    const down = this.config.buses.map((b, i) => ({ b, i, st: status(this.buses.get(b.id)!) })).filter((x) => !x.st.open);
    if (down.length) {
      const issues = down.map((x) => ({ path: `buses[${x.i}]`, message: `cannot open ${x.st.address}: ${x.st.error?.message ?? 'no answer'}` }));
      await this.close();
      throw Object.assign(new Error(issues.map((i) => `${i.path}: ${i.message}`).join('; ')), { issues });
    }
  }

  /** Relay channels of every device that has any (mapped to an output or not): device → channels. */
  relayChannels(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const d of this.config.devices) {
      const ch = channelsOf(definitionOf(d)).outputs;
      if (ch.length) out.set(d.id, ch);
    }
    return out;
  }

  /**
   * Every relay channel of every relay device off and read back, not only the mapped ones: a
   * channel left on by an earlier config or by hand is not left running (start-up, shutdown, fail-safe).
   * Returns the channels that did not confirm off.
   */
  async allOff(): Promise<{ device: string; channel: number; actual: 'on' | 'unknown' }[]> {
    await this.outputs.allOff();
    return this.outputs.channelsOff(this.relayChannels());
  }

  /** The Firmata buses a replacing runtime may take over (an Arduino would reset if reopened). */
  firmataBuses(): Map<string, FirmataBus> {
    return new Map([...this.buses].filter((e): e is [string, FirmataBus] => e[1] instanceof FirmataBus && e[1].isOpen));
  }

  /** The borrowed buses are this runtime's now (the one it replaced is gone). */
  adopt(): void {
    this.borrowed.clear();
  }

  /** Stop polling and close every bus, except those in `keep` (taken over by the next runtime) and borrowed ones. */
  async close(keep: Set<unknown> = new Set()): Promise<void> {
    await this.poller.stop();
    await this.outputs.idle();
    for (const d of this.devices.values()) if (d instanceof FirmataDevice) d.dispose();
    await Promise.all([...this.buses.values()].filter((b) => !keep.has(b) && !this.borrowed.has(b as FirmataBus)).map((b) => b.stop()));
  }
}
