/** The status page's API and the Prometheus metrics of a running gateway; the token off loopback. */
import { afterEach, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessRig } from '../helpers/gateway-rig.js';
import { freePort, waitFor } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop();
  rig = undefined;
});

/** Prometheus text exposition format 0.0.4, line by line: HELP, TYPE, or `name{labels} value`. */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

describe('status API and metrics', () => {
  it('/api/state, /metrics and the page on loopback', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: Date.parse('2026-06-01T10:00:00+08:00') });
    const r = rig;
    const base = `http://127.0.0.1:${r.gw.http!.port}`;
    await waitFor(() => r.gw.devices.get('head')!.counters.ok > 3, 5000);
    const st = (await (await fetch(`${base}/api/state?history`)).json()) as Record<string, any>;
    expect(st.gateway).toBe('test-site-0001');
    expect(st.state.sprinkling).toMatchObject({ allowed: true });
    expect(st.devices.head).toMatchObject({ status: 'online', driver: 'cwt-weather-station' });
    expect(st.devices.head.counters.ok).toBeGreaterThan(0);
    expect(st.latest.temperature).toMatchObject({ v: 18, flag: 'N' });
    expect(st.links).toEqual({ mqtt: 'connected', hj212: null, hj212Platforms: {} });
    expect(st.history.pm10.length).toBeGreaterThan(2);
    r.sim.setFaults('relays', ['crc-error']);
    await waitFor(() => r.gw.devices.get('relays')!.counters.crcErrors > 0, 5000);
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const m = parseProm(await res.text());
    expect(m.get('dustgate_device_requests_total{device="head"}')).toBeGreaterThan(0);
    expect(m.get('dustgate_device_crc_errors_total{device="relays"}')).toBeGreaterThan(0);
    expect(m.has('dustgate_device_timeouts_total{device="dio"}')).toBe(true);
    expect(m.get('dustgate_device_up{device="head"}')).toBe(1);
    expect(m.has('dustgate_buffer_records{kind="telemetry"}')).toBe(true);
    expect(m.has('dustgate_buffer_oldest_age_seconds')).toBe(true);
    expect(m.get('dustgate_link_up{link="mqtt"}')).toBe(1);
    const page = await (await fetch(`${base}/`)).text();
    expect(page).toContain('<title>扬尘网关 test-site-0001</title>'); // the preset's language
    expect(await (await fetch(`${base}/?lang=en`)).text()).toContain('<title>dustgate test-site-0001</title>');
    // machine fields never change with the language: the same keys and rule state, words only in explain/events/display
    const state = async (l: string) => (await (await fetch(`${base}/api/state?lang=${l}`)).json()) as Record<string, any>;
    const [zh, en] = [await state('zh-CN'), await state('en')];
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    expect([zh.locale, en.locale]).toEqual(['zh-CN', 'en']);
    expect(zh.state.sprinkling).toEqual(en.state.sprinkling);
    expect(zh.explain.sprinkling).toMatch(/[\u4e00-\u9fff]/);
    expect(en.explain.sprinkling).not.toMatch(/[\u4e00-\u9fff]/);
    expect((await fetch(`${base}/uplot.js`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('bound off loopback, nothing is served without the token', async () => {
    const port = await freePort();
    rig = await startInProcess('dust-event', { factor: 1, extra: { http: { bind: '0.0.0.0', port, token: 's3cret-page-token' } } });
    const base = `http://127.0.0.1:${port}`;
    for (const p of ['/', '/api/state', '/metrics']) expect((await fetch(`${base}${p}`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer s3cret-page-token' } })).status).toBe(200);
    expect((await fetch(`${base}/api/state?token=s3cret-page-token`)).status).toBe(200);
  });
});
