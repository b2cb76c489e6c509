/**
 * A fast CLI: each command loads only what it uses. The packages a command imports are traced
 * (test/helpers/trace-modules.mjs); one-off commands must not load the broker, the MQTT client,
 * SQLite, johnny-five, prom-client or pino-pretty. (Start-up time itself is measured in the bench.)
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/gateway-rig.js';
import { freePort, runCommand, waitFor } from '../helpers/system.js';

const HEAVY = ['aedes', 'mqtt', 'better-sqlite3', 'johnny-five', 'firmata-io', 'prom-client', 'pino-pretty', 'pino'];

async function loaded(args: string[]): Promise<{ mods: Set<string>; out: string }> {
  const r = await runCommand(process.execPath, ['--import', 'tsx', '--import', path.join(ROOT, 'test/helpers/trace-modules.mjs'), path.join(ROOT, 'gateway/cli/main.ts'), ...args], { cwd: ROOT });
  const mods = new Set([...r.stderr.matchAll(/^MOD (\S+)$/gm)].map((m) => m[1]!));
  return { mods, out: r.stdout + r.stderr };
}

describe('CLI start-up', () => {
  it('--version loads no package at all', async () => {
    const { mods, out } = await loaded(['--version']);
    expect(out).toMatch(/^\d+\.\d+\.\d+/);
    expect([...mods].filter((m) => m !== 'tsx' && m !== 'get-tsconfig' && m !== 'esbuild' && m !== 'resolve-pkg-maps')).toEqual([]);
  });

  it('read, write and config validate load none of the heavy parts', async () => {
    const port = await freePort(); // nothing listens: the command fails fast, after loading what it needs
    const cases = [
      ['read', '--host', `127.0.0.1:${port}`, '--driver', 'xy-md02', '--timeout', '200'],
      ['write', '--host', `127.0.0.1:${port}`, '--driver', 'waveshare-relay-8ch', '--channel', '1', '--on', '--timeout', '200'],
      ['config', 'validate', path.join(ROOT, 'seeds/sites/demo.yaml')],
    ];
    for (const args of cases) {
      const { mods, out } = await loaded(args);
      expect(mods.has('commander'), `${args[0]} ran: ${out}`).toBe(true);
      expect(HEAVY.filter((m) => mods.has(m)), `${args.join(' ')} loaded`).toEqual([]);
    }
    // and the gateway itself does load them (the trace sees what is there)
    const run = await loaded(['run', '--config', '/nonexistent/site.yaml']);
    expect(run.mods.has('better-sqlite3')).toBe(true);
    expect(run.mods.has('mqtt')).toBe(true);
  });

  it('a running gateway loads prom-client only when /metrics is first asked for', { timeout: 60_000 }, async () => {
    const dir = tempDir('lazy-metrics');
    const port = await freePort();
    writeFileSync(path.join(dir, 'site.yaml'), `gateway: { id: lazy-0001 }\nstorage: { path: ${dir}/buffer.db }\nmqtt: { enabled: false }\nhttp: { port: ${port} }\n`);
    const gw = spawn(process.execPath, ['--import', 'tsx', '--import', path.join(ROOT, 'test/helpers/trace-modules.mjs'), path.join(ROOT, 'gateway/cli/main.ts'), 'run', '--config', path.join(dir, 'site.yaml')], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    gw.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/api/state`).catch(() => undefined))?.ok, 30_000, 100);
      expect(err).toContain('MOD better-sqlite3');
      expect(err).not.toContain('MOD prom-client');
      const m = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(m.status).toBe(200);
      expect(await m.text()).toContain('dustgate_device_requests_total');
      expect(err).toContain('MOD prom-client');
    } finally {
      gw.kill('SIGTERM');
      await new Promise((r) => gw.once('exit', r));
    }
  });
});
