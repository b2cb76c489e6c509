/** A small file system of its own for disk-full tests: a tmpfs the test mounts (root), filled on purpose. */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './gateway-rig.js';

export interface SmallFs {
  dir: string;
  freeBytes(): number;
  /** Fill the file system until `leaveBytes` are free (a filler file); returns its path. */
  fill(leaveBytes?: number, name?: string): string;
  /** Remove a filler. */
  free(file: string): void;
  unmount(): void;
}

export function mountSmallFs(sizeMB: number, tag = 'smallfs'): SmallFs {
  const dir = tempDir(tag);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMB}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`cannot mount a ${sizeMB} MB tmpfs at ${dir} for the disk-full test (it needs root, as in CI): ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`);
  }
  const fs: SmallFs = {
    dir,
    freeBytes() {
      const st = statfsSync(dir);
      return st.bavail * st.bsize;
    },
    fill(leaveBytes = 0, name = `filler-${Date.now()}-${Math.random().toString(36).slice(2)}`) {
      const file = path.join(dir, name);
      const fd = openSync(file, 'w');
      const chunk = Buffer.alloc(64 * 1024, 1);
      try {
        for (;;) {
          const room = fs.freeBytes() - leaveBytes;
          if (room <= 0) break;
          writeSync(fd, chunk, 0, Math.min(chunk.length, room));
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        closeSync(fd);
      }
      return file;
    },
    free(file) {
      unlinkSync(file);
    },
    unmount() {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      } catch {
        /* already gone */
      }
    },
  };
  return fs;
}
