/**
 * A real pseudo-terminal pair made by socat: the gateway opens `path` through the native
 * serialport binding, the simulator holds `<path>-sim`. Killing socat makes the tty vanish,
 * as an unplugged USB adapter does; starting it again brings it back under the same name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SerialLink } from '../drivers/transports/link.js';
import { sleep } from '../drivers/line.js';

export class PtyError extends Error {
  override readonly name = 'PtyError';
}

export function haveSocat(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

export class PtyPair {
  private proc: ChildProcess | undefined;
  readonly simPath: string;
  constructor(readonly path: string) {
    this.simPath = `${path}-sim`;
  }

  get up(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null;
  }

  async start(): Promise<void> {
    if (!haveSocat()) throw new PtyError('socat not found: run `bash scripts/install-system-deps.sh` (needs the Debian package socat)');
    const proc = spawn('socat', [`pty,raw,echo=0,link=${this.path}`, `pty,raw,echo=0,link=${this.simPath}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (d) => (stderr += String(d)));
    this.proc = proc;
    const deadline = Date.now() + 5000;
    while (!(existsSync(this.path) && existsSync(this.simPath))) {
      if (proc.exitCode !== null) throw new PtyError(`socat exited (${proc.exitCode}) making ${this.path}: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new PtyError(`socat did not create ${this.path} within 5 s`);
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 1000).unref();
    });
    // socat removes its links on exit; wait until they are gone so a restart cannot race them.
    const deadline = Date.now() + 2000;
    while ((existsSync(this.path) || existsSync(this.simPath)) && Date.now() < deadline) await sleep(10);
  }

  /** Open the simulator's end with the native binding. */
  async openSimEnd(baudRate: number): Promise<SerialLink> {
    const link = new SerialLink({ path: this.simPath, baudRate });
    await link.open();
    return link;
  }
}
