/**
 * Store and forward (SPEC §7) end to end: a `dustgate run` child process, the simulator over Modbus
 * TCP, and mosquitto that we stop and start. A persistent subscriber must end up with every seq.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { Store } from '../../gateway/store.js';
import { ROOT, Subscriber, checkNoLoss, siteConfig, spawnGateway, startMosquitto, tempDir, type ChildGateway, type Mosquitto, simOverTcp as simOnTcp } from '../helpers/gateway-rig.js';
import { freePort, runCommand, waitFor } from '../helpers/system.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups.length = 0;
});

const simOverTcp = (scenario = 'demo') => simOnTcp(scenario, (stop) => cleanups.push(stop));

function writeConfig(dir: string, cfg: unknown): string {
  const file = path.join(dir, 'site.json');
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

async function stopChild(gw: ChildGateway, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (gw.proc.exitCode !== null) return gw.proc.exitCode;
  gw.proc.kill(signal);
  return gw.exited;
}

async function persistentSubscriber(m: Mosquitto, id: string): Promise<Subscriber> {
  // a persistent session: what is published while it is away is queued for it (mosquitto persistence keeps it across restarts)
  const s = await Subscriber.connect(m.url, 'dustgate/#', { clientId: id, clean: false });
  cleanups.push(() => s.close());
  return s;
}

describe('no loss across broker outages and crashes (mosquitto, dustgate run)', () => {
  it('broker stopped and restarted while telemetry flows: every seq arrives, in order', async () => {
    const { port } = await simOverTcp();
    const dir = tempDir('noloss');
    const m = await startMosquitto({ persistence: true, dir });
    cleanups.push(() => m.stop());
    const sub = await persistentSubscriber(m, 'noloss-sub-1');
    const file = writeConfig(dir, siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port }, mqttUrl: m.url, dir, extra: {} }));
    const gw = spawnGateway(file);
    cleanups.push(() => stopChild(gw, 'SIGKILL'));
    await waitFor(() => sub.readings().length >= 20, 20_000, 50);

    await m.stop();
    const before = Math.max(...sub.seqs());
    await new Promise((r) => setTimeout(r, 3000)); // ~100 readings buffered meanwhile
    await m.start();
    await waitFor(() => Math.max(...sub.seqs()) > before + 150, 30_000, 50);
    expect(await stopChild(gw)).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const res = checkNoLoss(sub.seqs());
    expect(res.first).toBe(1);
    expect(res.last).toBeGreaterThan(before + 150);
    expect(gw.output()).toMatch(/broker unreachable; buffering/);
    // everything acknowledged left the buffer
    const store = new Store({ path: path.join(dir, 'buffer.db'), maxMB: 64, readonly: true });
    expect(store.stats().telemetry + store.stats().events).toBe(0);
    expect(store.stats().lastSeq).toBe(res.last);
    store.close();
  });

  it('gateway killed with SIGKILL while the broker is down and again during the drain: every seq arrives', async () => {
    const { port } = await simOverTcp();
    const dir = tempDir('sigkill');
    const m = await startMosquitto({ persistence: true, dir });
    cleanups.push(() => m.stop());
    const sub = await persistentSubscriber(m, 'noloss-sub-2');
    // small batches so that the drain takes many messages
    const cfg = siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port }, mqttUrl: m.url, dir });
    const file = writeConfig(dir, { ...cfg, mqtt: { ...cfg.mqtt, maxBatch: 3 } });
    let gw = spawnGateway(file);
    cleanups.push(() => stopChild(gw, 'SIGKILL'));
    await waitFor(() => sub.readings().length >= 10, 20_000, 50);

    await m.stop();
    // the head's readings (10 a second; relays and inputs go up on change only) build the backlog
    await new Promise((r) => setTimeout(r, 4000));
    await stopChild(gw, 'SIGKILL'); // crash with a backlog on disk
    const backlog = new Store({ path: path.join(dir, 'buffer.db'), maxMB: 64, readonly: true }).stats();
    expect(backlog.telemetry).toBeGreaterThan(20);
    await m.start();
    const before = sub.seqs().length;
    const st0 = sub.on('status').length;
    gw = spawnGateway(file);
    // the restarted gateway is connected and draining (what the broker kept for the subscriber alone is not that)
    await waitFor(() => sub.on('status').slice(st0).some((m) => m.payload.state === 'online') && sub.seqs().length > before + 5, 20_000, 5);
    const statuses = sub.on('status').length;
    await stopChild(gw, 'SIGKILL'); // crash in the middle of the drain
    // the broker tells the world with the last will
    await waitFor(() => sub.on('status').slice(statuses).some((m) => m.payload.state === 'offline'), 5000);
    gw = spawnGateway(file);
    await waitFor(() => sub.seqs().some((s) => s > backlog.lastSeq + 40), 20_000, 50);
    expect(await stopChild(gw)).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    const res = checkNoLoss(sub.seqs());
    expect(res.first).toBe(1);
    expect(res.last).toBeGreaterThan(backlog.lastSeq + 40);
  });

  it('SIGTERM switches the outputs off on the device before the process exits', async () => {
    const { sim, port } = await simOverTcp('dust-event');
    const dir = tempDir('sigterm');
    const m = await startMosquitto({ dir });
    cleanups.push(() => m.stop());
    sim.setValues('head', { pm10: 400, temperature: 20 });
    const file = writeConfig(dir, siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port }, mqttUrl: m.url, dir }));
    const gw = spawnGateway(file);
    cleanups.push(() => stopChild(gw, 'SIGKILL'));
    await waitFor(() => sim.device('relays')!.overrides.ch1 === 1, 20_000, 50);
    expect(await stopChild(gw, 'SIGTERM')).toBe(0);
    expect(sim.device('relays')!.overrides.ch1).toBe(0);
    expect(gw.output()).toMatch(/outputs off at shutdown/);
  });
});

describe('buffer cap', () => {
  it('a tiny maxMB evicts the oldest telemetry first, keeps events, and reports the count', async () => {
    const { sim, port } = await simOverTcp('dust-event');
    const dir = tempDir('evict');
    const dead = await freePort(); // no broker: everything stays in the buffer
    const cfg = siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port }, mqttUrl: `mqtt://127.0.0.1:${dead}`, dir, pollMs: 50 });
    const loaded = resolveConfig({ ...cfg, storage: { path: path.join(dir, 'buffer.db'), maxMB: 0.05 } });
    const gw = new Gateway({ loaded, logger: pino({ level: 'silent' }) });
    cleanups.push(() => gw.stop());
    const events: { seq: number; type: string }[] = [];
    gw.on('event', (e: { seq: number; type: string }) => events.push(e));
    const telemetry: number[] = [];
    gw.on('reading', (r: { seq: number }) => telemetry.push(r.seq));
    await gw.start();
    // make events while the buffer fills: alarms come and go
    for (let i = 0; i < 6; i++) {
      sim.setValues('head', { pm10: i % 2 ? 30 : 900 });
      sim.setFaults('dio', i % 2 ? [] : ['timeout']);
      await new Promise((r) => setTimeout(r, 700));
    }
    await waitFor(() => gw.store.evicted.telemetry > 0 && events.some((e) => e.type === 'buffer_overflow'), 20_000);
    const kept = [...gw.store.iterate()];
    const keptEvents = kept.filter((r) => r.kind === 'event').map((r) => r.seq);
    const keptTelemetry = kept.filter((r) => r.kind === 'telemetry').map((r) => r.seq);
    // every event is still there
    expect(keptEvents).toEqual(expect.arrayContaining(events.filter((e) => e.seq <= keptEvents.at(-1)!).map((e) => e.seq)));
    expect(gw.store.evicted.events).toBe(0);
    // the telemetry kept is the newest: nothing older than an evicted record survives
    const evicted = telemetry.filter((s) => s <= keptTelemetry.at(-1)! && !keptTelemetry.includes(s));
    expect(evicted.length).toBe(gw.store.evicted.telemetry);
    expect(Math.max(...evicted)).toBeLessThan(keptTelemetry[0]!);
    const overflow = events.find((e) => e.type === 'buffer_overflow') as unknown as { evictedTelemetry: number; evictedEvents: number };
    expect(overflow.evictedTelemetry).toBeGreaterThan(0);
    expect(overflow.evictedEvents).toBe(0);
    expect(gw.store.stats().bytes).toBeLessThanOrEqual(0.05 * 1048576);
    await gw.stop();
    // and the CLI reports it
    const cfgFile = writeConfig(dir, { ...cfg, storage: { path: path.join(dir, 'buffer.db'), maxMB: 0.05 } });
    const out = await runCommand(process.execPath, ['--import', 'tsx', 'gateway/cli/main.ts', 'buffer', 'stats', '--config', cfgFile, '--json'], { cwd: ROOT });
    expect(out.code).toBe(0);
    const stats = JSON.parse(out.stdout) as { evicted: { telemetry: number; events: number }; events: number };
    expect(stats.evicted.telemetry).toBe(gw.store.evicted.telemetry);
    expect(stats.events).toBe(events.length); // every event ever recorded, the shutdown ones too
  });
});
