/**
 * The offline install bundle (`npm run bundle -- --arch x64 --with-node`): it installs into a
 * temporary root with no registry reachable and no npm at all on the PATH, the unit it writes runs
 * the bundle's own Node, and the installed `dustgate doctor` passes on the demo site (its simulator
 * also run from the installed bundle, a broker beside it). The arm64 bundle is checked the same way
 * under emulation in scripts/arm64-check.sh.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startEmbeddedBroker } from '../../gateway/broker.js';
import { ROOT, tempDir } from '../helpers/gateway-rig.js';
import { freePort, runCommand, waitFor } from '../helpers/system.js';

const stops: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s();
});

describe('offline install bundle', () => {
  it('x64: builds, installs with no network and no npm, and the installed doctor passes on the demo site', { timeout: 240_000 }, async () => {
    const out = tempDir('bundle');
    const made = await runCommand('bash', [path.join(ROOT, 'scripts/bundle.sh'), '--arch', 'x64', '--with-node', '--out', out], { cwd: ROOT, timeoutMs: 240_000 });
    expect(made.code, made.stderr).toBe(0);
    const tgz = made.stdout.trim().split('\n').at(-1)!;
    expect(path.basename(tgz)).toMatch(/^dustgate-\d+\.\d+\.\d+-linux-x64\.tar\.gz$/);
    const unpacked = tempDir('bundle-x');
    expect((await runCommand('tar', ['-C', unpacked, '-xzf', tgz])).code).toBe(0);
    const dir = path.join(unpacked, path.basename(tgz, '.tar.gz'));
    expect(existsSync(path.join(dir, 'install.sh'))).toBe(true);
    expect(existsSync(path.join(dir, 'node/bin/node'))).toBe(true);
    expect(existsSync(path.join(dir, 'app/node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);

    // no network: every registry unreachable, and an npm on the PATH that fails if anything calls it
    const bin = tempDir('no-npm');
    writeFileSync(path.join(bin, 'npm'), '#!/bin/sh\necho "npm was called: $*" >&2\nexit 99\n');
    chmodSync(path.join(bin, 'npm'), 0o755);
    writeFileSync(path.join(bin, 'timedatectl'), '#!/bin/sh\necho yes\n'); // a box whose clock NTP has set
    chmodSync(path.join(bin, 'timedatectl'), 0o755);
    const env = { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, HOME: tempDir('home'), npm_config_offline: 'true', npm_config_registry: 'http://127.0.0.1:9/', NO_PROXY: '*' };
    const root = tempDir('bundle-root');
    const site = path.join(tempDir('site'), 'site.yaml');
    const simPort = await freePort();
    const broker = await startEmbeddedBroker('127.0.0.1', 0);
    stops.push(() => broker.stop());
    writeFileSync(site, readFileSync(path.join(ROOT, 'seeds/sites/demo.yaml'), 'utf8').replace('port: 1502', `port: ${simPort}`).replace(/^mqtt:.*$/m, `mqtt: { url: "mqtt://127.0.0.1:${broker.port}" }`));
    const inst = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn('bash', [path.join(dir, 'install.sh'), site, '--root', root, '--user', 'dust'], { env });
      let o = '';
      p.stdout.on('data', (d) => (o += d));
      p.stderr.on('data', (d) => (o += d));
      p.on('exit', (code) => resolve({ code, out: o }));
    });
    expect(inst.code, inst.out).toBe(0);
    expect(inst.out).not.toMatch(/npm was called/);
    const unit = readFileSync(path.join(root, 'etc/systemd/system/dustgate.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/opt\/dustgate\/node\/bin\/node --max-semi-space-size=4 \/opt\/dustgate\/app\/dist\/cli\.js run --config \/etc\/dustgate\/site\.yaml$/m);
    expect(unit).toMatch(/^Type=notify$/m);
    expect(existsSync(path.join(root, 'var/lib/dustgate'))).toBe(true);

    // the installed binary: its simulator on the demo's devices, then the doctor
    const node = path.join(root, 'opt/dustgate/node/bin/node');
    const cli = path.join(root, 'opt/dustgate/app/dist/cli.js');
    const sim: ChildProcess = spawn(node, [cli, 'sim', '--scenario', path.join(root, 'opt/dustgate/app/seeds/scenarios/demo.yaml'), '--tcp', `127.0.0.1:${simPort}`, '--control', `127.0.0.1:${await freePort()}`], { env, stdio: 'ignore' });
    stops.push(() => void sim.kill('SIGKILL'));
    const work = tempDir('doctor');
    mkdirSync(work, { recursive: true });
    await waitFor(async () => (await runCommand(node, [cli, 'read', '--host', `127.0.0.1:${simPort}`, '--driver', 'cwt-weather-station', '--unit', '1'])).code === 0, 20_000, 200);
    const doc = await runCommand(node, [cli, 'doctor', '--config', path.join(root, 'etc/dustgate/site.yaml')], { cwd: work, timeoutMs: 60_000, env });
    expect(doc.stdout).toMatch(/^ok\s+config\s+/m);
    expect(doc.stdout).toMatch(/^ok\s+device head\s+cwt-weather-station unit 1 answers/m);
    expect(doc.stdout).toMatch(/^ok\s+broker\s+/m);
    expect(doc.code, doc.stdout + doc.stderr).toBe(0);
  });
});
