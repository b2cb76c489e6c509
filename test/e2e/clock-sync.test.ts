/**
 * A box without a real-time clock that NTP has not set (here: a gateway clock 3 hours behind):
 * readings and events are stored and sent, flagged `clock: "unsynced"`; the HJ 212 uplink asks the
 * platform for its time (1013), takes its set-time (1012) by correcting the gateway's own
 * timestamps, and says so in a `clock_set` event. With NTP in charge the platform's time is refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Hj212Platform } from '../../gateway/hj212/platform.js';
import { cpValue } from '../../gateway/hj212/codec.js';
import { parseHjTime } from '../../gateway/hj212/uplink.js';
import { startInProcess, type InProcessRig } from '../helpers/gateway-rig.js';
import { freePort, waitFor } from '../helpers/system.js';

const TZ = 'Asia/Shanghai';
let rig: InProcessRig | undefined;
let platform: Hj212Platform | undefined;
afterEach(async () => {
  await rig?.stop();
  await platform?.stop();
  rig = undefined;
  platform = undefined;
});

const hj = (port: number) => ({ hj212: { enabled: true, host: '127.0.0.1', port, st: 39, pw: '123456', mn: 'ZZ0412DUST0001', rtdIntervalS: 1, ackRequired: true, reconnectMaxS: 2 } });

describe('time on a box without a real-time clock', () => {
  it('3 hours behind and not synchronised: flagged, 1013 asked, the platform sets the time, an event says so', async () => {
    const port = await freePort();
    const behind = Date.now() - 3 * 3600_000;
    rig = await startInProcess('dust-event', { factor: 1, startMs: behind, extra: hj(port), clockSynced: false });
    const r = rig;
    // the platform is not there yet: what the gateway records meanwhile is in its own (wrong) time, flagged
    await waitFor(() => r.sub.readings('head').some((x) => x.clock === 'unsynced'), 10_000, 50);
    platform = new Hj212Platform({ port, timeZone: TZ });
    await platform.start();
    const p = platform;
    // the gateway asked for the time, the platform set it, the gateway said it did
    await waitFor(() => r.sub.events('clock_set').length > 0, 15_000, 50);
    expect(p.received.some((x) => x.cn === '1013' && x.mn === 'ZZ0412DUST0001')).toBe(true);
    const set = r.sub.events('clock_set')[0]!;
    expect(set).toMatchObject({ source: 'hj212', ntp: 'unsynced', clock: 'platform' });
    expect(Math.abs((set.deltaS as number) - 10_800)).toBeLessThan(5);
    await waitFor(() => p.received.some((x) => x.cn === '9012' && cpValue(x.packet, 'ExeRtn') === '1'), 5000, 50);

    // readings before the correction: the box's own (3 h behind), flagged unsynced; after: the platform's time
    await waitFor(() => r.sub.readings('head').some((x) => x.clock === 'platform'), 10_000, 50);
    const before = r.sub.readings('head').filter((x) => x.clock === 'unsynced');
    const after = r.sub.readings('head').filter((x) => x.clock === 'platform');
    expect(before.length).toBeGreaterThan(0);
    expect(Math.abs(Date.parse(before[0]!.ts as string) - behind)).toBeLessThan(60_000);
    expect(Math.abs(Date.parse(after.at(-1)!.ts as string) - Date.now())).toBeLessThan(10_000);
    // every reading's label is its own timestamp's: none taken before the correction is labelled with the platform's time
    for (const x of after) expect(Math.abs(Date.parse(x.ts as string) - Date.now()), `${x.ts} labelled platform`).toBeLessThan(60_000);
    for (const x of before) expect(Math.abs(Date.parse(x.ts as string) - behind), `${x.ts} labelled unsynced`).toBeLessThan(60_000);
    expect(r.sub.readings('head').every((x) => x.clock === 'unsynced' || x.clock === 'platform')).toBe(true);
    // and what goes to the platform is in its time too
    await waitFor(() => p.received.some((x) => x.cn === '2011' && Math.abs(parseHjTime(x.dataTime!, TZ) - Date.now()) < 10_000), 10_000, 50);
  });

  it('with NTP in charge: no 1013, and a 1012 from the platform is refused (ExeRtn 100); nothing flagged', async () => {
    const port = await freePort();
    platform = new Hj212Platform({ port, timeZone: TZ });
    await platform.start();
    rig = await startInProcess('dust-event', { factor: 1, startMs: Date.now(), extra: hj(port), clockSynced: true });
    const r = rig;
    const p = platform;
    await waitFor(() => p.connections > 0 && r.sub.readings('head').length > 0, 10_000, 50);
    const qn = p.request({ cn: '1012', mn: 'ZZ0412DUST0001', cp: [[['SystemTime', '20300101000000']]] });
    await waitFor(() => p.received.some((x) => x.cn === '9012' && x.qn === qn), 5000, 50);
    expect(cpValue(p.received.find((x) => x.cn === '9012' && x.qn === qn)!.packet, 'ExeRtn')).toBe('100');
    expect(p.received.some((x) => x.cn === '1013')).toBe(false);
    expect(r.sub.events('clock_set')).toEqual([]);
    expect(r.sub.readings('head').some((x) => 'clock' in x)).toBe(false);
  });
});
