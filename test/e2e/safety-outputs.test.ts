/**
 * Outputs own their hardware (issue "Safety under faults", SPEC §1 and §6 output safety): a channel
 * that is on and loses its mapping in a config change is switched off and read back before the
 * change is reported applied; every relay channel of every relay module is off after a start and
 * after a stop, mapped or not; when the rules cannot run, every output goes off.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { JUNE_10AM, ROOT, simOverTcp, siteConfig, sleep, startInProcess, tempDir, type InProcessRig } from '../helpers/gateway-rig.js';
import { freePort, waitFor } from '../helpers/system.js';

let rig: InProcessRig | undefined;
afterEach(async () => {
  await rig?.stop().catch(() => undefined);
  rig = undefined;
});

type Ev = { type: string; [k: string]: unknown };

async function sprinklerOn(r: InProcessRig): Promise<void> {
  await waitFor(() => r.gw.state().sprinkling.allowed, 5000);
  expect(r.gw.requestOutput('sprinkler', true, { durationS: 600 }).ok).toBe(true);
  await waitFor(() => r.relays.overrides.ch1 === 1 && r.gw.outputs.actual.sprinkler === 'on', 5000);
}

describe('a config change under a running relay', () => {
  it('deleting the sprinkler while it runs: coil 1 is off, read back, before the change is applied; an event says so', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    await sprinklerOn(r);
    const res = await r.gw.applyConfig({ patch: { outputs: { sprinkler: null } } }, { requestId: 'del-1' });
    // the moment the answer exists, the coil is already off on the device
    expect(r.relays.overrides.ch1).toBe(0);
    expect(res).toMatchObject({ ok: true });
    const ev = await waitFor(() => r.sub.events('output_unmapped')[0]);
    expect(ev).toMatchObject({ output: 'sprinkler', device: 'relays', channel: 1, reason: 'deleted', was: 'on', state: 'off', requestId: 'del-1' });
    // and it stays off: nothing maps it any more, through frost and a stop
    await sleep(500);
    expect(r.relays.overrides.ch1).toBe(0);
  });

  it('moving the sprinkler from channel 1 to 5 while it runs: 1 goes off (read back) before ok, 5 carries on the running spray', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    await sprinklerOn(r);
    const res = await r.gw.applyConfig({ patch: { outputs: { sprinkler: { channel: 5 } } } }, { requestId: 'move-1' });
    expect(r.relays.overrides.ch1).toBe(0);
    expect(res).toMatchObject({ ok: true });
    await waitFor(() => r.relays.overrides.ch5 === 1, 3000);
    const ev = await waitFor(() => r.sub.events('output_unmapped')[0]);
    expect(ev).toMatchObject({ output: 'sprinkler', channel: 1, reason: 'moved', state: 'off' });
    // frost: the new channel goes off, the old one was never switched on again
    r.sim.setValues('head', { temperature: 2 });
    await waitFor(() => r.relays.overrides.ch5 === 0, 3000);
    expect(r.relays.coilLog.filter((c) => c.channel === 1).map((c) => c.on)).toEqual([true, false]);
  });

  it('over MQTT: the remote answer comes after the old coil is off', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    await sprinklerOn(r);
    const P = 'dustgate/test-site-0001';
    let coilAtAnswer: number | undefined;
    r.sub.client.on('message', (topic) => {
      if (topic === `${P}/config/result` && coilAtAnswer === undefined) coilAtAnswer = r.relays.overrides.ch1 as number;
    });
    await r.sub.client.publishAsync(`${P}/config/set`, JSON.stringify({ requestId: 'mqtt-del-1', patch: { outputs: { sprinkler: null } } }), { qos: 1 });
    const answer = await waitFor(() => r.sub.on('config/result').find((m) => m.payload.requestId === 'mqtt-del-1'), 10_000);
    expect(answer.payload).toMatchObject({ ok: true });
    expect(coilAtAnswer).toBe(0);
  });
});

describe('every relay channel, mapped or not', () => {
  it('a restart with a changed map leaves no channel on: channels left on by an earlier config are switched off at start and at stop', async () => {
    rig = await startInProcess('dust-event', {
      factor: 1,
      startMs: JUNE_10AM,
      // channels 1 and 7 were left on (an earlier config, a crash, a hand); 7 is mapped to nothing
      beforeStart: (sim) => sim.setValues('relays', { ch1: 1, ch7: 1 }),
    });
    const r = rig;
    expect(r.relays.overrides.ch1).toBe(0);
    expect(r.relays.overrides.ch7).toBe(0);
    for (let ch = 1; ch <= 8; ch++) expect(r.relays.overrides[`ch${ch}`] ?? 0, `ch${ch}`).toBe(0);
    // something switches channel 8 on behind the gateway's back; a stop switches it off too
    r.sim.setValues('relays', { ch8: 1 });
    await r.gw.stop();
    expect(r.relays.overrides.ch8).toBe(0);
  });

  it('when the rules cannot run, every output goes off and is read back', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    await sprinklerOn(r);
    r.gw.engine.evaluate = () => {
      throw new Error('a rule that cannot be evaluated');
    };
    await waitFor(() => r.relays.overrides.ch1 === 0 && r.gw.outputs.actual.sprinkler === 'off', 2000);
  });

  it('fail-safe (a fatal error): polling stops, every channel goes off and is read back', async () => {
    rig = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM });
    const r = rig;
    await sprinklerOn(r);
    r.sim.setValues('relays', { ch6: 1 });
    await r.gw.failSafe('test');
    expect(r.relays.overrides.ch1).toBe(0);
    expect(r.relays.overrides.ch6).toBe(0);
    expect(r.gw.outputs.actual.sprinkler).toBe('off');
  });
});

describe('an error nothing caught', () => {
  it('dustgate run: every relay channel off and read back, then exit 70', async () => {
    const stops: (() => Promise<void>)[] = [];
    const { sim, port } = await simOverTcp('demo', (stop) => stops.push(stop));
    sim.setValues('head', { temperature: 15 });
    sim.setValues('relays', { ch8: 1 });
    try {
      const dir = tempDir('fatal');
      const file = path.join(dir, 'site.json');
      writeFileSync(file, JSON.stringify(siteConfig({ bus: { type: 'tcp', host: '127.0.0.1', port }, mqttUrl: `mqtt://127.0.0.1:${await freePort()}`, dir })));
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/helpers/fatal-child.ts'), file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DUSTGATE_LOG_LEVEL: 'info' } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(out).toMatch(/sprinkler on: \{"ok":true\}/);
      expect(out).toMatch(/a bug nobody caught/);
      expect(out).toMatch(/fail-safe: outputs off/);
      expect(code).toBe(70);
      const relays = sim.device('relays')!;
      expect(relays.coilLog.filter((c) => c.channel === 1).map((c) => c.on)).toEqual([true, false]);
      for (let ch = 1; ch <= 8; ch++) expect(relays.overrides[`ch${ch}`] ?? 0, `ch${ch}`).toBe(0);
    } finally {
      for (const stop of stops) await stop();
    }
  });
});

describe('a new config that starts on relays left on', () => {
  it('the gateway built on a config without the relay module mapped still switches its channels off at start', async () => {
    // outputs: none at all, but the relay module is configured: its channels are switched off
    const r = await startInProcess('dust-event', { factor: 1, startMs: JUNE_10AM, extra: { outputs: {}, rules: { dustAlarm: { onWarn: [] } } }, beforeStart: (sim) => sim.setValues('relays', { ch2: 1, ch3: 1 }) });
    rig = r;
    expect(r.relays.overrides.ch2).toBe(0);
    expect(r.relays.overrides.ch3).toBe(0);
  });
});
