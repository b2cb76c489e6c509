/**
 * Regulatory floors (issue "Safety under faults", SPEC §12): the preset's 4 °C road and 5 °C
 * greenbelt limits, Beaufort 3 and the earthwork ban window and levels may be made stricter
 * remotely, never looser; only the site file on the box relaxes one, with allowBelowRegulation
 * beside it, logged at start.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { ConfigError, resolveConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { JUNE_10AM, siteConfig, startInProcess, tempDir, type InProcessRig } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop().catch(() => undefined);
  rig = undefined;
});

const P = 'dustgate/test-site-0001';
const site = () => siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port: 1502 }, mqttUrl: 'mqtt://127.0.0.1:1', dir: tempDir('floors') });

describe('remote changes cannot relax the regulation', () => {
  it('minTempC 3 is refused with the reason, 5 is accepted; -50 is refused and frost still blocks a command at 3 °C', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    const ask = async (requestId: string, patch: unknown) => {
      await r.sub.client.publishAsync(`${P}/config/set`, JSON.stringify({ requestId, patch }), { qos: 1 });
      return (await waitFor(() => r.sub.on('config/result').find((m) => m.payload.requestId === requestId), 10_000)).payload as { ok: boolean; errors?: { path: string; message: string }[] };
    };
    const three = await ask('f1', { rules: { sprinkling: { minTempC: 3 } } });
    expect(three.ok).toBe(false);
    expect(three.errors![0]).toMatchObject({ path: 'rules.sprinkling.minTempC' });
    expect(three.errors![0]!.message).toMatch(/below the regulation's 4 °C/);
    expect(r.gw.config.rules.sprinkling.minTempC).toBe(4);
    expect(await ask('f2', { rules: { sprinkling: { minTempC: 5 } } })).toMatchObject({ ok: true });
    expect(r.gw.config.rules.sprinkling.minTempC).toBe(5);
    expect(await ask('f3', { rules: { sprinkling: { minTempC: -50 } } })).toMatchObject({ ok: false });
    await waitFor(() => r.sub.events('remote_refused').some((e) => e.requestId === 'f3' && /minTempC/.test(String(e.reason))), 5000);
    r.sim.setValues('head', { temperature: 3 });
    await waitFor(() => r.gw.state().sprinkling.temperature === 3, 5000);
    expect(r.gw.requestOutput('sprinkler', true)).toMatchObject({ ok: false, code: 'temperature_below_min' });
  });

  it.each([
    ['greenbelt below 5 °C', { rules: { sprinkling: { greenbeltMinTempC: 4.5 } } }, 'rules.sprinkling.greenbeltMinTempC'],
    ['sweeping allowed in force 3', { rules: { sweeping: { stopAtBeaufort: 4 } } }, 'rules.sweeping.stopAtBeaufort'],
    ['a shorter ban', { rules: { earthworkBan: { periods: [{ from: '12-01', to: '02-28' }] } } }, 'rules.earthworkBan.periods'],
    ['no ban at orange', { rules: { earthworkBan: { alertLevels: ['red'] } } }, 'rules.earthworkBan.alertLevels'],
    ['a red alert profile that sprays in frost', { rules: { alertProfiles: { red: { sprinkling: { minTempC: 2 } } } } }, 'rules.alertProfiles.red.sprinkling.minTempC'],
    ['the flag itself', { rules: { sprinkling: { allowBelowRegulation: true, minTempC: 3 } } }, 'rules.sprinkling.allowBelowRegulation'],
  ])('refused remotely: %s', async (_name, patch, path) => {
    const gw = new Gateway({ loaded: resolveConfig(site()), logger: pino({ level: 'silent' }), http: false });
    const res = await gw.applyConfig({ patch }, { requestId: 'x', source: 'remote' });
    expect(res.ok).toBe(false);
    expect(res.errors!.map((e) => e.path)).toContain(path);
    gw.store.close();
  });

  it.each([
    ['sweeping stopped from force 2', { rules: { sweeping: { stopAtBeaufort: 2 } } }],
    ['a longer ban', { rules: { earthworkBan: { periods: [{ from: '11-01', to: '03-31' }] } } }],
    ['the ban at yellow too', { rules: { earthworkBan: { alertLevels: ['yellow', 'orange', 'red'] } } }],
  ])('accepted remotely (stricter): %s', async (_name, patch) => {
    const gw = new Gateway({ loaded: resolveConfig(site()), logger: pino({ level: 'silent' }), http: false });
    const res = await gw.applyConfig({ patch }, { requestId: 'y', source: 'remote' });
    expect(res, JSON.stringify(res.errors)).toMatchObject({ ok: true });
    gw.store.close();
  });
});

describe('the site file on the box', () => {
  it('relaxes a floor only with allowBelowRegulation beside it; that is logged at start; remote changes cannot go below the file', async () => {
    const s = site();
    expect(() => resolveConfig({ ...s, rules: { sprinkling: { minTempC: 3 } } })).toThrow(ConfigError);
    try {
      resolveConfig({ ...s, rules: { sprinkling: { minTempC: 3 } } });
    } catch (e) {
      expect((e as ConfigError).issues[0]).toMatchObject({ path: 'rules.sprinkling.minTempC' });
      expect((e as ConfigError).issues[0]!.message).toMatch(/allowBelowRegulation: true/);
    }
    const loaded = resolveConfig({ ...s, rules: { sprinkling: { minTempC: 3, allowBelowRegulation: true } } });
    expect(loaded.config.rules.sprinkling.minTempC).toBe(3);
    expect(loaded.warnings).toContainEqual({ path: 'rules.sprinkling.allowBelowRegulation', message: expect.stringMatching(/relaxes the regulation on this box: sprinkling\.minTempC/) });
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    const gw = new Gateway({ loaded, logger, http: false });
    expect(lines.some((l) => /allowBelowRegulation/.test(l) && /"level":40/.test(l))).toBe(true);
    expect((await gw.applyConfig({ patch: { rules: { sprinkling: { minTempC: 2 } } } }, { source: 'remote' })).errors?.[0]).toMatchObject({ path: 'rules.sprinkling.minTempC' });
    expect(await gw.applyConfig({ patch: { rules: { sprinkling: { minTempC: 3.5 } } } }, { source: 'remote' })).toMatchObject({ ok: true });
    // and the flag cannot be taken away remotely either (it is the file's)
    expect((await gw.applyConfig({ patch: { rules: { sprinkling: { allowBelowRegulation: null } } } }, { source: 'remote' })).ok).toBe(false);
    gw.store.close();
  });
});
