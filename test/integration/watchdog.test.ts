/**
 * systemd's watchdog, with a Unix datagram socket standing in for systemd (NOTIFY_SOCKET): READY
 * after the first poll cycle, WATCHDOG=1 at the pace asked for while the control loop makes
 * progress, none when the rules or the polling are stuck, STATUS with degraded states (a failing
 * store keeps the pings), STOPPING on SIGTERM from the real binary.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SystemdNotifier, Watchdog, watchdogIntervalMs } from '../../gateway/watchdog.js';
import { JUNE_10AM, simOverTcp, siteConfig, sleep, spawnGateway, startInProcess, tempDir, type InProcessRig } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';

interface Datagram {
  at: number;
  fields: Record<string, string>;
}

/** A datagram socket where systemd's would be; keeps every notification with its arrival time. */
function fakeSystemd(): { path: string; got: Datagram[]; close(): void } {
  const unix = createRequire(import.meta.url)('unix-dgram') as { createSocket(t: string, cb: (m: Buffer) => void): { bind(p: string): void; close(): void } };
  const p = path.join(tempDir('notify'), 'notify.sock');
  const got: Datagram[] = [];
  const s = unix.createSocket('unix_dgram', (m) => got.push({ at: performance.now(), fields: Object.fromEntries(m.toString().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) }));
  s.bind(p);
  return { path: p, got, close: () => s.close() };
}

const stops: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

describe('systemd watchdog', () => {
  it('reads WATCHDOG_USEC as systemd means it: half the timeout, only for its own pid', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' })).toBe(15_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, 2)).toBeUndefined();
    expect(watchdogIntervalMs({})).toBeUndefined();
  });

  it('READY after the first poll cycle; pings at the pace while the loop runs; none while the rules or the polling are stuck', async () => {
    const sd = fakeSystemd();
    stops.push(sd.close);
    const rig: InProcessRig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM, pollMs: 100 });
    stops.push(() => rig.stop());
    const notifier = new SystemdNotifier(sd.path);
    const wd = new Watchdog(rig.gw, notifier, { intervalMs: 200, stallMs: 800 });
    stops.push(() => notifier.close());
    stops.push(() => wd.stopping());
    await wd.ready();
    await waitFor(() => sd.got.some((d) => d.fields.READY === '1'), 2000, 20);
    const ready = sd.got.find((d) => d.fields.READY === '1')!;
    expect(rig.gw.rt.poller.firstCycleDone).toBe(true);
    expect(ready.fields.STATUS).toMatch(/^running: 3\/3 devices online, buffer \d+, mqtt up$/);

    // pings every 200 ms while the control loop runs
    await sleep(2000);
    const pings = () => sd.got.filter((d) => d.fields.WATCHDOG === '1');
    const first = pings();
    expect(first.length).toBeGreaterThanOrEqual(7);
    const gaps = first.slice(1).map((d, i) => d.at - first[i]!.at);
    for (const g of gaps) expect(g).toBeLessThan(600);

    // a store that cannot write is in STATUS but does not stop the pings (a restart would not free the disk)
    const realStatus = rig.gw.storage.status.bind(rig.gw.storage);
    rig.gw.storage.status = () => ({ ...realStatus(), state: 'failing', code: 'disk_full' });
    const n0 = pings().length;
    await sleep(700);
    expect(pings().length).toBeGreaterThan(n0);
    expect(pings().at(-1)!.fields.STATUS).toMatch(/^degraded: .*store failing \(disk_full\)/);
    rig.gw.storage.status = realStatus;

    // the rules stop running: no more pings, STATUS says why
    const evaluate = rig.gw.engine.evaluate.bind(rig.gw.engine);
    rig.gw.engine.evaluate = () => {
      throw new Error('stuck on purpose');
    };
    await sleep(500);
    const n1 = pings().length;
    await sleep(1000);
    expect(pings().length).toBe(n1);
    expect(sd.got.at(-1)!.fields.STATUS).toMatch(/^stalled: the rules were not evaluated/);
    rig.gw.engine.evaluate = evaluate;
    await waitFor(() => pings().length > n1, 2000, 20); // back: pings again

    // the polling sticks (a read that never returns): once it is further behind than allowed, no pings
    const head = rig.gw.rt.devices.get('head')!;
    const read = head.read.bind(head);
    let release: (() => void) | undefined;
    head.read = () => new Promise((_, reject) => (release = () => reject(new Error('released'))));
    await waitFor(() => /^stalled: polling is \d+ s behind/.test(sd.got.at(-1)!.fields.STATUS ?? ''), 5000, 20);
    const n2 = pings().length;
    await sleep(800);
    expect(pings().length).toBe(n2);
    head.read = read;
    release!();
  });

  it('dustgate run under a stand-in systemd: READY, pings at WATCHDOG_USEC/2, STOPPING on SIGTERM', async () => {
    const sd = fakeSystemd();
    stops.push(sd.close);
    const { port } = await simOverTcp('dust-event', (s) => stops.push(s));
    const dir = tempDir('wd-run');
    const cfg = siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port }, mqttUrl: 'mqtt://127.0.0.1:1', dir });
    const file = path.join(dir, 'site.json');
    writeFileSync(file, JSON.stringify({ ...cfg, mqtt: { ...cfg.mqtt, enabled: false } }));
    const child = spawnGateway(file, { NOTIFY_SOCKET: sd.path, WATCHDOG_USEC: '1000000' });
    stops.push(() => {
      if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
    });
    await waitFor(() => sd.got.some((d) => d.fields.READY === '1'), 20_000, 50);
    const t0 = performance.now();
    await sleep(3000);
    const pings = sd.got.filter((d) => d.fields.WATCHDOG === '1' && d.at >= t0);
    expect(pings.length).toBeGreaterThanOrEqual(5); // every 500 ms
    expect(pings.length).toBeLessThanOrEqual(7);
    expect(pings.at(-1)!.fields.STATUS).toMatch(/^running: 3\/3 devices online/);
    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    const stopping = sd.got.find((d) => d.fields.STOPPING === '1');
    expect(stopping).toBeDefined();
    expect(sd.got.filter((d) => d.fields.WATCHDOG === '1' && d.at > stopping!.at)).toEqual([]);
  });
});
