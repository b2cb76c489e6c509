/** A dead or noisy device never stalls the line; every fault is counted and survived. */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Poller } from '../../gateway/poller.js';
import { DriverError } from '../../drivers/errors.js';
import type { ScenarioInput } from '../../simulator/scenario.js';
import { startRig, type Rig, type TransportKind } from '../helpers/rig.js';
import { requireTool, waitFor } from '../helpers/system.js';

const LINE: ScenarioInput = {
  devices: [
    { id: 'head', driver: 'cwt-weather-station', unit: 1, baudRate: 9600, values: { temperature: 12.5, pm10: 88 } },
    { id: 'th', driver: 'xy-md02', unit: 2, baudRate: 9600, values: { temperature: 12.2, humidity: 51.5 } },
    { id: 'noise', driver: 'noise-transmitter', unit: 3, baudRate: 9600, values: { noise: 61.4 } },
    { id: 'dust', driver: 'dust-transmitter', unit: 4, baudRate: 9600, values: { pm25: 42, pm10: 90, tsp: 210 } },
    { id: 'relays', driver: 'waveshare-relay-8ch', unit: 5, baudRate: 9600 },
  ],
  faults: [{ device: 'noise', fault: 'timeout' }],
};

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof DriverError ? e.code : `untyped: ${String(e)}`;
  }
}

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

describe('one dead device on a line of five', () => {
  it('does not stop the other four from being read every cycle', async () => {
    rig = await startRig(LINE, 'mock', { timeoutMs: 150 });
    const pollMs = 600;
    const runMs = 6000;
    const clients = ['head', 'th', 'noise', 'dust', 'relays'].map((id) => rig!.client(id, { pollMs, offlineAfter: 3 }));
    const logged: { device?: string; code?: string; status?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const poller = new Poller(clients, { logger });
    const readings: Record<string, number[]> = { head: [], th: [], noise: [], dust: [], relays: [] };
    const t0 = Date.now();
    poller.on('reading', (r: { device: string }) => readings[r.device]!.push(Date.now() - t0));
    const offline: string[] = [];
    for (const c of clients) c.on('status', (s: string) => s === 'offline' && offline.push(c.id));
    // 'idle' (the gateway writes a cycle's readings then): once a cycle at least, never with a read in flight
    let idles = 0;
    let busyAtIdle = 0;
    poller.on('idle', () => {
      idles++;
      busyAtIdle += rig!.bus.line.queued + poller.readsInFlight;
    });
    poller.start();
    await new Promise((r) => setTimeout(r, runMs));
    await poller.stop();

    const cycles = Math.floor(runMs / pollMs);
    for (const id of ['head', 'th', 'dust', 'relays']) {
      expect(readings[id]!.length, id).toBeGreaterThanOrEqual(cycles - 1);
      // No cycle skipped: a reading lands pollMs after the last, give or take the wait in the line's
      // queue (at most one 150 ms timeout plus the other devices' ~30 ms reads); a skipped cycle
      // would show as a gap of about 2 × pollMs.
      const gaps = readings[id]!.slice(1).map((t, i) => t - readings[id]![i]!);
      expect(Math.max(...gaps), `${id} gaps ${gaps.join(',')}`).toBeLessThan(pollMs + 300);
    }
    expect(readings.noise).toHaveLength(0);
    expect(idles).toBeGreaterThanOrEqual(cycles - 1);
    expect(idles).toBeLessThanOrEqual(poller.completed);
    expect(busyAtIdle).toBe(0);
    expect(offline).toEqual(['noise']);
    const noise = clients[2]!;
    expect(noise.counters.timeouts).toBeGreaterThanOrEqual(3);
    // backoff: the dead device was asked fewer times than the cycles that passed
    expect(noise.counters.requests).toBeLessThan(cycles);
    expect(noise.counters.lastError?.code).toBe('timeout');
    // logged once per change, not once per timeout
    expect(logged.filter((l) => l.device === 'noise' && l.code === 'timeout')).toHaveLength(1);
    expect(logged.filter((l) => l.device === 'noise' && l.status === 'offline')).toHaveLength(1);
    expect(logged.filter((l) => l.device !== 'noise' && (l.code || l.status === 'offline'))).toHaveLength(0);
  });
});

for (const kind of ['mock', 'pty', 'tcp'] as TransportKind[]) {
  describe(`faults over ${kind}`, () => {
    it('counts CRC errors, garbage, exceptions, short frames and slow replies, and recovers from each', async () => {
      if (kind === 'pty') requireTool('socat', ['-V']);
      rig = await startRig({ ...LINE, faults: [] }, kind, { timeoutMs: 250 });
      const dust = rig.client('dust');
      const head = rig.client('head');
      const expectations: [string, string, keyof typeof dust.counters][] = [
        ['crc-error', kind === 'tcp' ? 'garbage' : 'crc', kind === 'tcp' ? 'garbage' : 'crcErrors'],
        ['garbage', 'garbage', 'garbage'],
        ['exception:4', 'exception', 'exceptions'],
        ['short-frame', 'short_frame', 'shortFrames'],
        ['slow:600', 'timeout', 'timeouts'],
        ['timeout', 'timeout', 'timeouts'],
      ];
      for (const [fault, code, counter] of expectations) {
        const before = dust.counters[counter] as number;
        rig.sim.setFaults('dust', [fault]);
        expect(await codeOf(dust.read()), fault).toBe(code);
        expect(dust.counters[counter], fault).toBe(before + 1);
        expect(dust.counters.lastError?.code).toBe(code);
        // the neighbour on the same line is unaffected
        expect((await head.read()).pm10, `${fault}: neighbour`).toBe(88);
        rig.sim.setFaults('dust', []);
        await new Promise((r) => setTimeout(r, 700)); // let any late reply drain
        expect(await dust.read(), `${fault}: recovered`).toEqual({ pm25: 42, pm10: 90, tsp: 210 });
      }
      rig.sim.setFaults('dust', ['slow:80']);
      expect(await codeOf(dust.read())).toBe('ok');
      expect(dust.counters.lastRttMs!).toBeGreaterThanOrEqual(75); // a timer may fire a little early against performance.now()
      expect(dust.status).toBe('online');
    });
  });
}

describe('an adapter that disappears and comes back', () => {
  it('is reopened without restarting the process (real pty)', async () => {
    requireTool('socat', ['-V']);
    rig = await startRig(LINE, 'pty', { timeoutMs: 250, reopenMaxMs: 300 });
    const head = rig.client('head');
    const states: string[] = [];
    rig.bus.line.on('state', (s: string) => states.push(s));
    expect((await head.read()).pm10).toBe(88);

    await rig.sim.unplug();
    // the poller keeps asking; the line notices the hang-up or the vanished tty node
    await waitFor(async () => (await codeOf(head.read())) && rig!.bus.line.state !== 'open', 5000);
    expect(await codeOf(head.read())).toBe('closed');
    expect(head.counters.closed).toBeGreaterThanOrEqual(1);

    await rig.sim.replug();
    await waitFor(() => rig!.bus.line.state === 'open', 5000);
    expect((await head.read()).pm10).toBe(88);
    expect(rig.bus.line.counters.opens).toBe(2);
    expect(states).toContain('down');
  });

  it('follows a `disconnect` fault window and comes back by itself', async () => {
    requireTool('socat', ['-V']);
    rig = await startRig(LINE, 'pty', { timeoutMs: 250, reopenMaxMs: 300, sim: { faultPollMs: 50 } });
    const head = rig.client('head');
    expect((await head.read()).temperature).toBe(12.5);
    rig.sim.setFaults('head', ['disconnect'], 1);
    await waitFor(async () => (await codeOf(head.read())) && rig!.bus.line.state !== 'open', 5000);
    await waitFor(() => rig!.bus.line.state === 'open', 6000);
    rig.sim.setFaults('head', []);
    expect((await head.read()).temperature).toBe(12.5);
  });
});

describe('a Modbus TCP peer that drops the connection', () => {
  it('fails the request in flight as closed at once (not after the timeout), and the line reconnects', async () => {
    const { createServer } = await import('node:net');
    const { Bus } = await import('../../drivers/bus.js');
    const { DeviceClient } = await import('../../drivers/device.js');
    const { getDefinition } = await import('../../drivers/devices/index.js');
    // the far end: takes the connection, and drops it (reset) when the first request arrives
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.once('data', () => s.resetAndDestroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const bus = new Bus({ id: 'eth', type: 'tcp', host: '127.0.0.1', port, timeoutMs: 3000 }, { reopenInitialMs: 50, reopenMaxMs: 200 });
    try {
      await bus.start();
      const head = new DeviceClient(bus, getDefinition('cwt-weather-station'), { id: 'head', unit: 1 });
      const t0 = performance.now();
      const err = await head.read().then(() => undefined, (e: unknown) => e as DriverError);
      expect(err?.code).toBe('closed');
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(head.counters.closed).toBe(1);
      // and it connects again by itself
      await waitFor(() => connections >= 2 && bus.line.state === 'open', 5000);
    } finally {
      await bus.stop();
      server.close();
    }
  });
});

describe('an output on a busy line', () => {
  it('a relay write waits behind the one read on the wire, not behind the rest of the cycle', async () => {
    // ten heads and the relay module on one RS-485 line at 9600 baud (the simulator keeps wire time):
    // a head's read is about 40 ms on the wire, a cycle about 450 ms
    const heads = Array.from({ length: 10 }, (_, i) => ({ id: `h${i + 1}`, driver: 'cwt-weather-station', unit: i + 1, baudRate: 9600, values: { pm10: 80 } }));
    rig = await startRig({ devices: [...heads, { id: 'relays', driver: 'waveshare-relay-8ch', unit: 11, baudRate: 9600 }] }, 'mock', { timeoutMs: 300 });
    const clients = [...heads.map((h) => rig!.client(h.id, { pollMs: 1000 })), rig.client('relays', { pollMs: 1000 })];
    const relays = clients.at(-1)!;
    const poller = new Poller(clients);
    const writes: number[] = [];
    let writing = false;
    // the first head's reading of a cycle is the moment the rules would switch (frost on the line)
    poller.on('reading', (r: { device: string }) => {
      if (r.device !== 'h1' || writing) return;
      writing = true;
      const t = performance.now();
      void relays.writeChannel(1, writes.length % 2 === 0).then(() => {
        writes.push(performance.now() - t);
        writing = false;
      });
    });
    poller.start();
    await waitFor(() => writes.length >= 3, 10_000);
    await poller.stop();
    // a read on its own: the first head's (first in its cycle, so no wait in the line is in its time)
    const read = clients[0]!.counters.lastRttMs ?? 0;
    expect(read).toBeGreaterThan(20);
    // the write's own frames are shorter than a read's; behind the rest of the cycle it would wait nine reads
    for (const w of writes) expect(w, `writes ${writes.map((x) => x.toFixed(0))} ms, a read ${read.toFixed(0)} ms`).toBeLessThan(2 * read);
  });
});
