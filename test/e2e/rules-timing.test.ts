/**
 * The rules between readings (gateway/rules-clock.ts): with the gateway's own 1 s heartbeat and
 * slow polls (the head every 5 s), a pulse and a timed command still end when they should — on the
 * deadline the engine names, not at the next heartbeat or reading — and the relay follows.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { JUNE_10AM, startInProcess, type InProcessRig } from '../helpers/gateway-rig.js';
import { waitFor } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop().catch(() => undefined);
  rig = undefined;
});

/** ms from now until the gateway records `output` going off */
function offAfter(r: InProcessRig, output: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const on = (e: { type: string; output?: string; state?: string }) => {
      if (e.type !== 'output_changed' || e.output !== output || e.state !== 'off') return;
      r.gw.off('event', on);
      resolve(performance.now() - t0);
    };
    r.gw.on('event', on);
  });
}

describe('rules on their deadlines', () => {
  it('a 500 ms pulse ends after 500 ms (four times, at different phases of the heartbeat), a 1 s command after 1 s; the coils follow', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM, pollMs: 5000, tickMs: 1000, rules: { dustAlarm: { onWarn: [] } } });
    const r = rig;
    const pulses: number[] = [];
    for (const pause of [0, 250, 500, 750]) {
      await new Promise((res) => setTimeout(res, pause));
      const off = offAfter(r, 'cameraTrigger');
      expect(r.gw.requestOutput('cameraTrigger', true).ok).toBe(true);
      pulses.push(await off);
      await waitFor(() => r.relays.overrides.ch3 === 0 && r.gw.outputs.actual.cameraTrigger === 'off', 3000);
    }
    // on the heartbeat alone a pulse would end 500–1500 ms after it began (all four under 850 ms: about
    // one chance in seventy); the bound leaves 350 ms for a busy test machine
    for (const ms of pulses) expect(ms, pulses.join(', ')).toBeGreaterThanOrEqual(495);
    for (const ms of pulses) expect(ms, pulses.join(', ')).toBeLessThan(850);
    expect(r.relays.coilLog.filter((c) => c.channel === 3).map((c) => c.on)).toEqual([true, false, true, false, true, false, true, false]);

    await waitFor(() => r.gw.state().sprinkling.allowed, 15_000);
    const off = offAfter(r, 'sprinkler');
    expect(r.gw.requestOutput('sprinkler', true, { durationS: 1 }).ok).toBe(true);
    const ms = await off;
    expect(ms).toBeGreaterThanOrEqual(995);
    expect(ms).toBeLessThan(1350);
    await waitFor(() => r.relays.overrides.ch1 === 0 && r.gw.outputs.actual.sprinkler === 'off', 3000);
  }, 60_000);
});
