/**
 * Remote input cannot starve the box (issue "Safety under faults", SPEC §12): 2,000 messages a
 * second for 20 s on `config/set`, then on `cmd/output`, from an operator process of its own through
 * mosquitto. The head (polled every second) keeps its cadence, the page answers, config versions
 * stay bounded, and every message gets an answer — accepted, or refused saying why.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pino } from 'pino';
import { resolveConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { loadScenario } from '../../simulator/scenario.js';
import { Simulator } from '../../simulator/simulator.js';
import { ROOT, siteConfig, startMosquitto, tempDir } from '../helpers/gateway-rig.js';
import { uniquePath, waitFor } from '../helpers/system.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  cleanups.length = 0;
});

const RATE = 2000;
const SECONDS = 20;

interface FloodReport {
  sent: number;
  sentMs: number;
  answered: number;
  ok: number;
  codes: Record<string, number>;
  missing: number[];
}

function flood(url: string, topic: string, resultTopic: string, kind: 'config' | 'output'): Promise<FloodReport> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'test/helpers/flood.mjs'), url, topic, resultTopic, String(RATE * SECONDS), String(RATE), kind], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as FloodReport) : reject(new Error(`flood exited ${code}: ${err}`))));
  });
}

describe('a flood of remote messages', () => {
  it('2,000 messages/s for 20 s on config/set and on cmd/output: readings keep their cadence, the page answers, versions stay bounded, every message is answered', async () => {
    const m = await startMosquitto();
    cleanups.push(() => m.stop());
    const sim = new Simulator(loadScenario(path.join(ROOT, 'seeds/scenarios/demo.yaml')), { wireTime: false });
    const portPath = uniquePath('flood');
    sim.serveMock(portPath, 'main');
    cleanups.push(() => sim.stop());
    sim.setValues('head', { temperature: 15 });
    const dir = tempDir('flood');
    const loaded = resolveConfig(siteConfig({ bus: { type: 'rtu', path: portPath, baudRate: 9600, timeoutMs: 500 }, mqttUrl: m.url, dir, pollMs: 1000 }));
    const gw = new Gateway({ loaded, binding: sim.binding, logger: pino({ level: 'silent' }) });
    cleanups.push(() => gw.stop());
    const refusedEvents: { count?: number }[] = [];
    gw.on('event', (e: { type: string; count?: number }) => e.type === 'remote_refused' && refusedEvents.push(e));
    const heads: number[] = [];
    gw.on('reading', (r: { device: string }) => r.device === 'head' && heads.push(performance.now()));
    await gw.start();
    await new Promise((r) => setTimeout(r, 2000));
    const P = 'dustgate/test-site-0001';

    // the page, asked every 250 ms throughout
    const page: { ms: number; ok: boolean }[] = [];
    let asking = true;
    const asker = (async () => {
      while (asking) {
        const t = performance.now();
        const ok = await fetch(`http://127.0.0.1:${gw.http!.port}/api/state`, { signal: AbortSignal.timeout(5000) })
          .then((r) => r.ok)
          .catch(() => false);
        page.push({ ms: performance.now() - t, ok });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    const v0 = gw.version;
    const from = heads.length;
    const config = await flood(m.url, `${P}/config/set`, `${P}/config/result`, 'config');
    const versions = gw.version - v0;
    const cmd = await flood(m.url, `${P}/cmd/output`, `${P}/cmd/result`, 'output');
    asking = false;
    await asker;

    const gaps = heads.slice(from).map((t, i, a) => (i ? t - a[i - 1]! : 0));
    const worst = Math.max(...gaps);
    const report = { config, cmd, versions, worstGapMs: Math.round(worst), page: { asked: page.length, failed: page.filter((p) => !p.ok).length, slowestMs: Math.round(Math.max(...page.map((p) => p.ms))) } };
    console.log(JSON.stringify(report));

    for (const f of [config, cmd]) {
      expect(f.sent).toBe(RATE * SECONDS);
      expect(f.sentMs).toBeLessThan(SECONDS * 1000 + 3000); // the load really was 2,000/s
      expect(f.missing, 'every message has an answer').toEqual([]);
      expect(f.answered).toBe(RATE * SECONDS);
      expect(f.ok).toBeGreaterThan(0);
      expect(f.codes.rate_limited).toBeGreaterThan(RATE * SECONDS * 0.5);
      expect(Object.keys(f.codes)).toEqual(['rate_limited']);
    }
    // config: admitted at 20/s (and a burst), applied together: at most one version per admitted message, in practice far fewer
    expect(versions).toBeGreaterThan(0);
    expect(versions).toBeLessThanOrEqual(20 * SECONDS + 40);
    expect(worst, 'largest gap between readings of the 1 s head').toBeLessThan(2000);
    expect(heads.length - from).toBeGreaterThanOrEqual(2 * SECONDS - 5);
    expect(page.filter((p) => !p.ok)).toEqual([]);
    expect(Math.max(...page.map((p) => p.ms))).toBeLessThan(2000);
    // one summary event a second for the refused flood, not one per message
    const refusedTotal = (config.codes.rate_limited ?? 0) + (cmd.codes.rate_limited ?? 0);
    const sum = () => refusedEvents.reduce((a, e) => a + (e.count ?? 0), 0);
    await waitFor(() => sum() === refusedTotal, 3000); // the last second's summary comes a second later
    const summaries = refusedEvents.filter((e) => e.count !== undefined);
    expect(summaries.length).toBeGreaterThan(0);
    expect(summaries.length).toBeLessThan(2 * SECONDS + 20);
    expect(refusedEvents.length).toBeLessThan(2 * SECONDS + 20);
  }, 180_000);
});
