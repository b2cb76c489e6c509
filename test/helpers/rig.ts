/** Wiring the simulator and drivers together the way the gateway does, over a chosen transport. */
import { Bus, type BusConfig } from '../../drivers/bus.js';
import { DeviceClient } from '../../drivers/device.js';
import { getDefinition } from '../../drivers/devices/index.js';
import { parseScenario, type ScenarioInput } from '../../simulator/scenario.js';
import { Simulator, type SimulatorOptions } from '../../simulator/simulator.js';
import { freePort, uniquePath } from './system.js';

export type TransportKind = 'mock' | 'pty' | 'tcp' | 'rtu-over-tcp';

export interface Rig {
  sim: Simulator;
  bus: Bus;
  client(id: string, opts?: { timeoutMs?: number; offlineAfter?: number; pollMs?: number }): DeviceClient;
  stop(): Promise<void>;
}

/** Start `scenario` and open a bus to its `line` over `kind`. */
export async function startRig(
  scenario: ScenarioInput,
  kind: TransportKind,
  o: { line?: string; timeoutMs?: number; sim?: SimulatorOptions; reopenMaxMs?: number } = {},
): Promise<Rig> {
  const sim = new Simulator(parseScenario(scenario), o.sim);
  const line = o.line ?? 'main';
  const onLine = sim.devicesOn(line);
  const frame = onLine.some((d) => d.definition.kind === 'frame');
  const baudRate = sim.lineBaud(line);
  const timeoutMs = o.timeoutMs ?? 300;
  let cfg: BusConfig;
  const reopen = { reopenInitialMs: 100, reopenMaxMs: o.reopenMaxMs ?? 400 };
  let binding;
  if (kind === 'mock' || kind === 'pty') {
    const path = uniquePath(kind);
    if (kind === 'mock') {
      sim.serveMock(path, line);
      binding = sim.binding;
    } else await sim.servePty(path, line);
    cfg = frame ? { id: line, type: 'serial', path, baudRate, timeoutMs } : { id: line, type: 'rtu', path, baudRate, timeoutMs };
  } else {
    const port = await freePort();
    if (kind === 'tcp') await sim.serveTcp('127.0.0.1', port, line);
    else await sim.serveRtuOverTcp('127.0.0.1', port, line);
    cfg = { id: line, type: kind, host: '127.0.0.1', port, timeoutMs, baudRate };
  }
  const bus = new Bus(cfg, { binding, ...reopen });
  await bus.start();
  const clients: DeviceClient[] = [];
  return {
    sim,
    bus,
    client(id, opts = {}) {
      const v = sim.device(id)!;
      const c = new DeviceClient(bus, getDefinition(v.definition.name), { id, unit: v.unit, ...opts });
      clients.push(c);
      return c;
    },
    async stop() {
      await bus.stop();
      await sim.stop();
    },
  };
}
