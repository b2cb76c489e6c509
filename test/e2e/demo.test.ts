/** `npm start` (= `dustgate demo`): a plain MQTT client sees telemetry and state within seconds. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from '../helpers/gateway-rig.js';
import { freePort, requireTool, runCommand, waitFor } from '../helpers/system.js';

describe('npm start', () => {
  it('brings up simulator, broker and gateway; mosquitto_sub sees telemetry, state and status; Ctrl-C stops it cleanly', async () => {
    requireTool('mosquitto_sub', ['--help']);
    const mqttPort = await freePort();
    const controlPort = await freePort();
    const data = tempDir('demo');
    const demo = spawn('npm', ['start', '--', '--mqtt-port', String(mqttPort), '--control', `127.0.0.1:${controlPort}`, '--data', data], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    demo.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => demo.once('exit', (c) => r(c)));
    try {
      await waitFor(() => out.includes('dustgate demo is running'), 30_000, 100);
      expect(out).toContain(`mqtt://127.0.0.1:${mqttPort}`);
      expect(out).toContain('dustgate/demo-site-0001/telemetry');
      const t0 = Date.now();
      const sub = await runCommand('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-t', 'dustgate/demo-site-0001/#', '-v', '-W', '4'], { timeoutMs: 10_000 });
      const lines = sub.stdout.trim().split('\n');
      const topics = new Set(lines.map((l) => l.split(' ')[0]));
      expect(topics).toContain('dustgate/demo-site-0001/telemetry');
      expect(topics).toContain('dustgate/demo-site-0001/state');
      expect(topics).toContain('dustgate/demo-site-0001/status');
      expect(Date.now() - t0).toBeLessThan(6000);
      const tele = lines.find((l) => l.startsWith('dustgate/demo-site-0001/telemetry ') && l.includes('"head"'))!;
      // a message holds the readings of every device polled meanwhile: take the head's
      const reading = (JSON.parse(tele.slice(tele.indexOf(' ') + 1)) as { readings: { device: string; seq: number; values: Record<string, number>; flags: Record<string, string> }[] }).readings.find((r) => r.device === 'head')!;
      expect(reading.seq).toBeGreaterThan(0);
      expect(Object.keys(reading.values)).toEqual(expect.arrayContaining(['pm10', 'pm25', 'temperature', 'windSpeed', 'noise']));
      expect(reading.flags.pm10).toBe('N');
      // the newest state (the retained one at subscribe time may be from before every device answered)
      let state = JSON.parse(lines.filter((l) => l.startsWith('dustgate/demo-site-0001/state ')).at(-1)!.replace(/^\S+ /, '')) as Record<string, unknown>;
      expect(Object.keys(state)).toEqual(expect.arrayContaining(['ts', 'sprinkling', 'sweeping', 'alarms', 'alertLevel', 'outputs', 'devices']));
      // on a loaded machine a device's first poll can time out: its next one brings it online (the
      // retained state follows); give it a few polls rather than the first four seconds
      for (let i = 0; i < 10 && Object.values(state.devices as Record<string, string>).some((v) => v !== 'online'); i++) {
        const again = await runCommand('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-t', 'dustgate/demo-site-0001/state', '-C', '1', '-W', '4'], { timeoutMs: 10_000 });
        if (again.stdout.trim()) state = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(state.devices).toEqual({ head: 'online', relays: 'online', dio: 'online' });
    } finally {
      process.kill(-demo.pid!, 'SIGINT');
    }
    await exited;
    await waitFor(() => existsSync(path.join(data, 'demo-gateway.log')), 1000);
    expect(out).toMatch(/SIGINT: switching outputs off/);
  }, 90_000);
});
