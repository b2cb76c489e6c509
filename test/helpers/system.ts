/** System tools the tests need; a missing one fails the test with the install command, never skips. */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A PATH whose `timedatectl` answers NTPSynchronized=yes or no, as a box with or without NTP would:
 * the far end of the doctor's clock check (this machine's own may not run systemd).
 */
export function ntpPath(synced: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), `dustgate-ntp-${synced ? 'yes' : 'no'}-`));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'timedatectl'), `#!/bin/sh\necho ${synced ? 'yes' : 'no'}\n`);
  chmodSync(join(dir, 'timedatectl'), 0o755);
  return `${dir}:${process.env.PATH}`;
}
import { execFile, spawn, spawnSync } from 'node:child_process';
import net from 'node:net';

export const INSTALL_HINT = 'run `bash scripts/install-system-deps.sh` (Debian packages socat, mosquitto, mosquitto-clients, openssl, mbpoll, python3-pymodbus, chromium, postgresql)';

export function requireTool(cmd: string, args: string[] = ['--version']): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${cmd} is not installed: ${INSTALL_HINT}`);
}

export function requirePymodbus(): void {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import pymodbus'], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`python3-pymodbus is not installed: ${INSTALL_HINT}`);
}

/** Start a pymodbus server script from test/peers on a free loopback port; resolves once it accepts connections. */
export async function startPymodbus(script: string): Promise<{ port: number; stop(): void }> {
  requirePymodbus();
  const port = await freePort();
  const py = spawn('/usr/bin/python3', [script, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  py.stderr!.on('data', (d) => (err += String(d)));
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        if (py.exitCode !== null) throw new Error(`pymodbus server ${script} exited: ${err}`);
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    15_000,
    100,
  );
  return { port, stop: () => py.kill('SIGKILL') };
}

/** A free TCP port on loopback (bound and released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 5000, stepMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

let n = 0;
/** A unique path for a pty or mock port. */
export function uniquePath(tag: string): string {
  return `/tmp/dustgate-test-${process.pid}-${tag}-${n++}`;
}

/** Run a command without blocking the event loop (an in-process simulator must keep answering). */
export function runCommand(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { cwd: opts.cwd, encoding: 'utf8', timeout: opts.timeoutMs ?? 20_000, env: opts.env }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}
