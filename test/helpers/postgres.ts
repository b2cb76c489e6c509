/**
 * A throwaway PostgreSQL cluster from Debian's `postgresql` package: initdb in a temporary folder,
 * the server on a free loopback port, stopped by PID. As root it runs as the `postgres` user
 * (PostgreSQL refuses to run as root). Missing: fails naming the install script.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './system.js';

export interface TestPostgres {
  url: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error('PostgreSQL is not installed: run `bash scripts/install-system-deps.sh` (Debian package postgresql)');
  return path.join(root, versions[0]!, 'bin');
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'dustgate-pg-'));
  const data = path.join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  let uid = -1;
  let gid = -1;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error('no `postgres` user to run PostgreSQL as: run `bash scripts/install-system-deps.sh` (Debian package postgresql creates it)');
    uid = Number(id.stdout.trim());
    gid = Number(g.stdout.trim());
    chownSync(dir, uid, gid);
  }
  const opts = asRoot ? { uid, gid } : {};
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'dustgate', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C.UTF-8'], { ...opts, encoding: 'utf8', cwd: dir });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.error}`);
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let log = '';
  const start = async () => {
    proc = spawn(path.join(bin, 'postgres'), ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'full_page_writes=off'], { ...opts, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    proc.stderr!.on('data', (d) => (log = (log + String(d)).slice(-4000)));
    await waitFor(
      () => {
        if (proc!.exitCode !== null) throw new Error(`postgres exited: ${log}`);
        return spawnSync(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']).status === 0;
      },
      30_000,
      100,
    );
  };
  await start();
  return {
    url: `postgres://dustgate@127.0.0.1:${port}/postgres`,
    port,
    start,
    async stop() {
      const p = proc;
      if (!p || p.exitCode !== null) return;
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT'); // fast shutdown
      await done;
    },
  };
}
