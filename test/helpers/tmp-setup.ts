/**
 * vitest globalSetup: every temporary file of a test run (databases, ptys, configs, bundles, the
 * brokers' and child processes' files) goes under one directory of its own, removed when the run
 * ends. Tests make their directories with mkdtemp under os.tmpdir(); without this, each run left
 * hundreds of them behind (tens of GB after a few weeks of runs on one machine).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  // once per run: every project of the config inherits this setup, and nesting would make paths too
  // long for the Unix sockets in them (PostgreSQL's, Chromium's: 107 bytes at most); the name is short
  if (process.env.DUSTGATE_TEST_TMP) return () => undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-run-'));
  process.env.DUSTGATE_TEST_TMP = dir;
  chmodSync(dir, 0o755); // a test may hand a subdirectory to another user (the PostgreSQL server)
  process.env.TMPDIR = dir; // the workers and every child process inherit it
  return () => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      // a mount a failed test left (the disk-full tests' tmpfs) keeps its mount point: say so, go on
      process.stderr.write(`test temp files: ${dir} not fully removed: ${(e as Error).message}\n`);
    }
  };
}
