/**
 * HJ 212 end to end: simulator → gateway → the platform stand-in over TCP, on a scaled clock
 * (a scenario hour in 12 s): real-time and minute uploads with codes and flags, an outage of two
 * hours filled after reconnecting, and a back-fill request answered with exactly the stored hours.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Hj212Platform, type Received } from '../../gateway/hj212/platform.js';
import { cpValue, hjTime } from '../../gateway/hj212/codec.js';
import { startInProcess, type InProcessRig } from '../helpers/gateway-rig.js';
import { freePort, waitFor } from '../helpers/system.js';

const TZ = 'Asia/Shanghai';
const cst = (iso: string) => Date.parse(`${iso}+08:00`);
let rig: InProcessRig | undefined;
const platforms: Hj212Platform[] = [];
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
  for (const p of platforms) await p.stop();
  platforms.length = 0;
});

async function platformOn(port: number): Promise<Hj212Platform> {
  const p = new Hj212Platform({ port, timeZone: TZ });
  await p.start();
  platforms.push(p);
  return p;
}

const hj = (port: number, extra: Record<string, unknown> = {}) => ({
  hj212: { enabled: true, host: '127.0.0.1', port, st: 39, pw: '123456', mn: 'ZZ0412DUST0001', rtdIntervalS: 60, minIntervalMin: 1, ackRequired: true, reconnectMaxS: 2, ...extra },
});

describe('HJ 212 uplink', () => {
  it('2011 and 2051 arrive on schedule with the right codes, values and flags, each acknowledged', async () => {
    const port = await freePort();
    const platform = await platformOn(port);
    rig = await startInProcess('dust-event', { factor: 60, startMs: cst('2026-06-01T10:00:30'), extra: hj(port) });
    const r = rig;
    r.sim.setValues('head', { pm10: 88, pm25: 41, temperature: 21.5, humidity: 45, pressure: 100.8, windSpeed: 2.4, windDirection: 135, noise: 62.3 });
    await waitFor(() => platform.received.filter((x) => x.cn === '2051').length >= 3, 30_000, 100);
    const rtd = platform.received.filter((x) => x.cn === '2011');
    expect(rtd.length).toBeGreaterThanOrEqual(2);
    const last = rtd.at(-1)!;
    expect(last.mn).toBe('ZZ0412DUST0001');
    expect(cpValue(last.packet, 'a34002-Rtd')).toBe('88');
    expect(cpValue(last.packet, 'a34004-Rtd')).toBe('41');
    expect(cpValue(last.packet, 'a01001-Rtd')).toBe('21.5');
    expect(cpValue(last.packet, 'LA-Rtd')).toBe('62.3');
    expect(cpValue(last.packet, 'a34002-Flag')).toBe('N');
    // real-time every rtdIntervalS (60 s of scenario time)
    const gaps = rtd.slice(1).map((x, i) => (Number(x.dataTime!.slice(10, 12)) * 60 + Number(x.dataTime!.slice(12)) - (Number(rtd[i]!.dataTime!.slice(10, 12)) * 60 + Number(rtd[i]!.dataTime!.slice(12)) ) + 3600) % 3600);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(59);
    const minutes = platform.received.filter((x) => x.cn === '2051');
    const m = minutes.find((x) => cpValue(x.packet, 'a34002-Avg') === '88')!;
    expect(m).toBeDefined();
    expect(m.flag).toBe(5);
    expect(cpValue(m.packet, 'a34002-Min')).toBe('88');
    expect(cpValue(m.packet, 'a34002-Max')).toBe('88');
    expect(cpValue(m.packet, 'a34002-Flag')).toBe('N');
    expect(cpValue(m.packet, 'a01008-Avg')).toBe('135');
    // minute DataTimes are whole, consecutive minutes
    const times = minutes.map((x) => x.dataTime!);
    for (const t of times) expect(t.slice(12)).toBe('00');
    expect(new Set(times).size).toBe(times.length);
    // the platform logs a packet before the gateway has read its ack: wait for the gateway's side
    await waitFor(() => r.gw.hj212[0]!.counters.acked >= 3 && r.gw.hj212[0]!.pending().length === 0, 5000, 20);
    expect(r.gw.hj212[0]!.counters.acked).toBeGreaterThanOrEqual(3);
  });

  it('a two-hour platform outage is filled after reconnecting: every 2051 and 2061, acknowledged, none twice after its ack; a 2061 back-fill returns exactly the stored hours', async () => {
    const port = await freePort();
    let platform = await platformOn(port);
    rig = await startInProcess('dust-event', { factor: 600, startMs: cst('2026-06-01T09:50:00'), extra: hj(port) });
    const r = rig;
    await waitFor(() => platform.received.some((x) => x.cn === '2051'), 20_000, 50);
    const before = [...platform.received];
    await platform.stop();
    platforms.length = 0;
    const outFrom = r.now();
    await waitFor(() => r.now() - outFrom >= 2 * 3600_000, 30_000, 100); // two hours of scenario time
    expect(r.gw.hj212[0]!.isConnected).toBe(false);
    const backlog = r.gw.hj212[0]!.pending();
    expect(backlog.filter((p) => p.cn === '2061').length).toBeGreaterThanOrEqual(2);
    expect(backlog.filter((p) => p.cn === '2051').length).toBeGreaterThanOrEqual(100);
    platform = await platformOn(port);
    await waitFor(() => r.gw.hj212[0]!.pending().length === 0 && r.gw.hj212[0]!.isConnected, 40_000, 100);
    const after: Received[] = platform.received;
    const local = (iso: string) => hjTime(Date.parse(iso), TZ);
    for (const p of backlog) {
      const got = after.filter((x) => x.cn === p.cn && x.dataTime === local(p.start));
      expect(got.length, `${p.cn} ${local(p.start)}`).toBeGreaterThanOrEqual(1);
    }
    // nothing acknowledged before the outage was sent again
    const ackedBefore = new Set(before.filter((x) => x.cn === '2051').map((x) => x.dataTime));
    expect(after.filter((x) => x.cn === '2051' && ackedBefore.has(x.dataTime))).toEqual([]);
    // and with the platform acking at once, each period went exactly once
    const keys = after.filter((x) => x.cn === '2051' || x.cn === '2061').map((x) => `${x.cn}/${x.dataTime}`);
    expect(new Set(keys).size).toBe(keys.length);

    // back-fill: ask for the hours of a window; exactly the stored ones come back, between 9011 and 9012
    const stored = r.gw.store.aggs.range('hour', new Date(outFrom - 3600_000).toISOString(), new Date(r.now()).toISOString(), 'head');
    const hours = [...new Set(stored.map((x) => x.start))];
    expect(hours.length).toBeGreaterThanOrEqual(2);
    const n = platform.received.length;
    const begin = local(hours[0]!);
    const end = local(hours[hours.length - 1]!);
    const qn = platform.request({ cn: '2061', mn: 'ZZ0412DUST0001', cp: [[['BeginTime', begin]], [['EndTime', end]]] });
    await waitFor(() => platform.received.slice(n).some((x) => x.cn === '9012' && x.qn === qn), 10_000, 50);
    const answer = platform.received.slice(n).filter((x) => x.qn === qn);
    expect(answer[0]).toMatchObject({ cn: '9011' });
    expect(cpValue(answer[0]!.packet, 'QnRtn')).toBe('1');
    expect(answer.at(-1)).toMatchObject({ cn: '9012' });
    expect(cpValue(answer.at(-1)!.packet, 'ExeRtn')).toBe('1');
    expect(answer.filter((x) => x.cn === '2061').map((x) => x.dataTime)).toEqual(hours.map(local));
  });
});

describe('two HJ 212 platforms', () => {
  it('the environment platform keeps its schedule while the housing platform is cut for two hours; the cut one is refilled with every minute and hour, none twice', async () => {
    const [envPort, housingPort] = [await freePort(), await freePort()];
    const env = await platformOn(envPort);
    let housing = await platformOn(housingPort);
    const platform = (name: string, port: number, mn: string, pw: string) => ({ name, enabled: true, host: '127.0.0.1', port, st: 39, pw, mn, rtdIntervalS: 60, minIntervalMin: 1, ackRequired: true, reconnectMaxS: 2 });
    rig = await startInProcess('dust-event', {
      factor: 600,
      startMs: cst('2026-06-01T09:50:00'),
      extra: { hj212: [platform('environment', envPort, 'ZZ0412ENV00001', 'env-pass'), platform('housing', housingPort, 'ZZ0412ZJ000001', 'zj-pass')] },
    });
    const r = rig;
    expect(r.gw.hj212.map((p) => p.name)).toEqual(['environment', 'housing']);
    await waitFor(() => env.received.some((x) => x.cn === '2051') && housing.received.some((x) => x.cn === '2051'), 20_000, 50);
    // each platform its own MN and password
    expect(new Set(env.received.filter((x) => x.cn === '2051').map((x) => x.mn))).toEqual(new Set(['ZZ0412ENV00001']));
    expect(new Set(housing.received.filter((x) => x.cn === '2051').map((x) => x.mn))).toEqual(new Set(['ZZ0412ZJ000001']));
    expect(env.received.find((x) => x.cn === '2051')!.text).toContain('PW=env-pass');
    expect(housing.received.find((x) => x.cn === '2051')!.text).toContain('PW=zj-pass');
    const housingBefore = [...housing.received];
    await housing.stop();
    platforms.splice(platforms.indexOf(housing), 1);
    const outFrom = r.now();
    const envFrom = env.received.length;
    await waitFor(() => r.now() - outFrom >= 2 * 3600_000, 30_000, 100);
    const outTo = r.now();
    // the environment platform: every minute of the outage, in order, none missing, nothing waiting
    const envMinutes = [...new Set(env.received.slice(envFrom).filter((x) => x.cn === '2051').map((x) => x.dataTime!))].sort();
    const toMs = (t: string) => cst(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(8, 10)}:${t.slice(10, 12)}:${t.slice(12, 14)}`);
    for (let i = 1; i < envMinutes.length; i++) expect(toMs(envMinutes[i]!) - toMs(envMinutes[i - 1]!), envMinutes[i]).toBe(60_000);
    expect(envMinutes.length).toBeGreaterThanOrEqual(110);
    expect(toMs(envMinutes.at(-1)!)).toBeGreaterThanOrEqual(outTo - 3 * 60_000); // on schedule: the latest minutes are there
    expect(env.received.slice(envFrom).filter((x) => x.cn === '2061').length).toBeGreaterThanOrEqual(2);
    expect(r.gw.hj212[0]!.pending().length).toBeLessThanOrEqual(2);
    // the housing platform waited in its own queue
    const hz = r.gw.hj212[1]!;
    expect(hz.isConnected).toBe(false);
    const backlog = hz.pending();
    expect(backlog.filter((p) => p.cn === '2051').length).toBeGreaterThanOrEqual(100);
    expect(backlog.filter((p) => p.cn === '2061').length).toBeGreaterThanOrEqual(2);
    housing = await platformOn(housingPort);
    await waitFor(() => hz.pending().length === 0 && hz.isConnected, 40_000, 100);
    const local = (iso: string) => hjTime(Date.parse(iso), TZ);
    for (const p of backlog) expect(housing.received.filter((x) => x.cn === p.cn && x.dataTime === local(p.start)).length, `${p.cn} ${local(p.start)}`).toBeGreaterThanOrEqual(1);
    const keys = housing.received.filter((x) => x.cn === '2051' || x.cn === '2061').map((x) => `${x.cn}/${x.dataTime}`);
    expect(new Set(keys).size).toBe(keys.length);
    const ackedBefore = new Set(housingBefore.filter((x) => x.cn === '2051').map((x) => x.dataTime));
    expect(housing.received.filter((x) => x.cn === '2051' && ackedBefore.has(x.dataTime))).toEqual([]);
    // both queues live in the one store, by name
    expect(r.gw.store.uploads('environment').pending().length).toBe(r.gw.hj212[0]!.pending().length);
  });
});

describe('HJ 212 daily data', () => {
  it('at local midnight the day goes out as 2031 (flagged: the gateway saw only its last minutes)', async () => {
    const port = await freePort();
    const platform = await platformOn(port);
    rig = await startInProcess('dust-event', { factor: 60, startMs: cst('2026-06-01T23:58:00'), extra: hj(port) });
    // queued by period start, so the day (from 00:00) goes before the hour (from 23:00): wait for both
    await waitFor(() => platform.received.some((x) => x.cn === '2031') && platform.received.some((x) => x.cn === '2061'), 20_000, 50);
    const day = platform.received.find((x) => x.cn === '2031')!;
    expect(day.dataTime).toBe('20260601000000');
    expect(cpValue(day.packet, 'a34002-Flag')).toBe('B');
    expect(cpValue(day.packet, 'a34002-Avg')).toBeUndefined(); // no valid hour, no mean
    const hour = platform.received.find((x) => x.cn === '2061')!;
    expect(hour.dataTime).toBe('20260601230000');
  });
});

describe('HJ 212 platform requests and acks', () => {
  it('time, intervals and real-time on/off are answered with 9011 and 9012; an unknown request is refused', async () => {
    const port = await freePort();
    const platform = await platformOn(port);
    rig = await startInProcess('dust-event', { factor: 1, startMs: cst('2026-06-01T10:00:00'), extra: hj(port, { rtdIntervalS: 30 }) });
    await waitFor(() => platform.connections > 0 && platform.received.length > 0, 10_000);
    const ask = async (cn: string, cp: [string, string][][] = []) => {
      const n = platform.received.length;
      const qn = platform.request({ cn, mn: 'ZZ0412DUST0001', cp });
      await waitFor(() => platform.received.slice(n).some((x) => x.qn === qn && (x.cn === '9012' || (x.cn === '9011' && cpValue(x.packet, 'QnRtn') !== '1'))), 5000);
      return platform.received.slice(n).filter((x) => x.qn === qn);
    };
    const time = await ask('1011');
    expect(time.map((x) => x.cn)).toEqual(['9011', '1011', '9012']);
    expect(cpValue(time[1]!.packet, 'SystemTime')).toMatch(/^2026060110\d{4}$/);
    expect(cpValue((await ask('1012', [[['SystemTime', '20260601100000']]])).at(-1)!.packet, 'ExeRtn')).toBe('100');
    expect(cpValue((await ask('1062', [[['RtdInterval', '45']]])).at(-1)!.packet, 'ExeRtn')).toBe('1');
    expect(cpValue((await ask('1061'))[1]!.packet, 'RtdInterval')).toBe('45');
    expect(cpValue((await ask('1062', [[['RtdInterval', 'soon']]])).at(-1)!.packet, 'ExeRtn')).toBe('3');
    expect(cpValue((await ask('1064', [[['MinInterval', '5']]])).at(-1)!.packet, 'ExeRtn')).toBe('1');
    expect(cpValue((await ask('1063'))[1]!.packet, 'MinInterval')).toBe('5');
    await ask('2012');
    const n = platform.received.length;
    await new Promise((r) => setTimeout(r, 1200));
    expect(platform.received.slice(n).filter((x) => x.cn === '2011')).toEqual([]);
    const unknown = await ask('3020');
    expect(cpValue(unknown[0]!.packet, 'QnRtn')).toBe('2');
  });

  it('without 9014 an upload is tried three times, then the connection is rebuilt and the period sent again', async () => {
    const port = await freePort();
    const platform = await platformOn(port);
    platform.ack = false;
    rig = await startInProcess('dust-event', { factor: 60, startMs: cst('2026-06-01T10:00:30'), extra: hj(port) });
    const r = rig;
    // a fast ack time-out for the test: 300 ms of real time
    r.gw.hj212[0]!.ackTimeoutMs = 300;
    await waitFor(() => r.gw.hj212[0]!.counters.connects >= 2, 20_000, 50);
    const first = platform.received.find((x) => x.cn === '2051')!;
    expect(platform.received.filter((x) => x.cn === '2051' && x.dataTime === first.dataTime).length).toBeGreaterThanOrEqual(3);
    expect(r.gw.hj212[0]!.counters.retries).toBeGreaterThanOrEqual(2);
    platform.ack = true;
    await waitFor(() => r.gw.hj212[0]!.pending().length === 0, 20_000, 50);
  });

  it('dustgate hj212-platform logs packets as JSON lines and acks uploads that ask for it', async () => {
    const { spawn } = await import('node:child_process');
    const net = await import('node:net');
    const path = await import('node:path');
    const { ROOT } = await import('../helpers/gateway-rig.js');
    const { readFileSync } = await import('node:fs');
    const vectors = JSON.parse(readFileSync(path.resolve(__dirname, '../fixtures/vectors.json'), 'utf8')) as { hj212: { packets: { text: string }[] } };
    const port = await freePort();
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'gateway/cli/main.ts'), 'hj212-platform', '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('"listening"'), 15_000);
      const sock = net.connect(port, '127.0.0.1');
      let back = '';
      sock.on('data', (d) => (back += d.toString()));
      await new Promise((r) => sock.once('connect', r));
      const upload = vectors.hj212.packets.find((x) => x.text.includes('a34004-Flag'))!.text;
      sock.write(upload);
      sock.write(upload.replace('C741', 'C742'));
      await waitFor(() => back.includes('CN=9014') && out.includes('bad-packet'), 5000);
      expect(back).toMatch(/^##\d{4}QN=20240501120000000;ST=91;CN=9014;/);
      const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.event === 'packet')).toMatchObject({ cn: '2011', mn: '010000A8900016F000169DC0', dataTime: '20240501120000' });
      expect(lines.find((l) => l.event === 'bad-packet')).toMatchObject({ code: 'bad_crc' });
      sock.destroy();
    } finally {
      p.kill('SIGTERM');
    }
  });
});
