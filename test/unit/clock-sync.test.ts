/**
 * The NTP probe (gateway/clock-sync.ts): each ask forks the gateway, so a tool that is missing is not
 * started again, one that cannot answer is asked again after a growing wait, and a synchronised clock
 * is asked less often. Fake time; the far end (timedatectl, chronyc) is a function.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProbeTools, probeClockSync, systemdBooted, watchClockSync, type SyncState } from '../../gateway/clock-sync.js';

const NO_FLAG = '/nonexistent/dustgate-test/synchronized';

describe('clock sync probe', () => {
  it('does not start a missing tool again, and asks a failing one after 1, 2, 4 … 16 minutes', async () => {
    let now = 0;
    const calls: string[] = [];
    let timedatectl: 'fail' | 'yes' = 'fail';
    const exec = async (cmd: string): Promise<string> => {
      calls.push(cmd);
      if (cmd === 'chronyc') throw Object.assign(new Error('spawn chronyc ENOENT'), { code: 'ENOENT' });
      if (timedatectl === 'fail') throw Object.assign(new Error('System has not been booted with systemd'), { code: 1 });
      return 'yes\n';
    };
    const tools = new ProbeTools(exec, () => now);
    const ask = () => probeClockSync({ tools, flagFile: NO_FLAG });
    const asksAt: number[] = [];
    // one probe a minute for an hour: which minutes start timedatectl?
    for (let min = 0; min < 60; min++) {
      now = min * 60_000;
      const before = calls.filter((c) => c === 'timedatectl').length;
      const s = await ask();
      expect(s.synced).toBeUndefined();
      if (calls.filter((c) => c === 'timedatectl').length > before) asksAt.push(min);
    }
    // waits 1, 2, 4, 8, 16, 16 … minutes after each failure
    expect(asksAt).toEqual([0, 1, 3, 7, 15, 31, 47]);
    // chronyc is not installed: started once, never again
    expect(calls.filter((c) => c === 'chronyc')).toHaveLength(1);
    // once it answers, it is asked every time again
    timedatectl = 'yes';
    now = 63 * 60_000;
    expect(await ask()).toMatchObject({ synced: true, source: 'timedatectl' });
    now = 64 * 60_000;
    const n = calls.length;
    expect(await ask()).toMatchObject({ synced: true });
    expect(calls.length).toBe(n + 1);
  });

  it('on a box not booted with systemd, timedatectl is not started; chronyc is asked instead', async () => {
    const calls: string[] = [];
    const exec = async (cmd: string): Promise<string> => {
      calls.push(cmd);
      if (cmd === 'timedatectl') return 'yes\n';
      return 'Reference ID    : 0A000001\nLeap status     : Not synchronised\n';
    };
    expect(await probeClockSync({ run: exec, flagFile: NO_FLAG, systemd: false })).toMatchObject({ synced: false, source: 'chronyc' });
    expect(calls).toEqual(['chronyc']);
    // with systemd, timedatectl answers first
    expect(await probeClockSync({ run: exec, flagFile: NO_FLAG })).toMatchObject({ synced: true, source: 'timedatectl' });
    // sd_booted(): the directory systemd makes at boot
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dustgate-sd-'));
    expect(systemdBooted(dir)).toBe(true);
    expect(systemdBooted(path.join(dir, 'system'))).toBe(false);
  });

  afterEach(() => void vi.useRealTimers());

  it('asks every minute until the clock is synchronised, then every 10 minutes; a lost sync is seen at the next ask', async () => {
    vi.useFakeTimers();
    const answers: (boolean | undefined)[] = [false, false, true, true, false, false];
    let asked = 0;
    const probe = async (): Promise<SyncState> => ({ synced: answers[Math.min(asked++, answers.length - 1)], source: 'test', detail: '' });
    const clock: { synced: boolean | undefined } = { synced: undefined };
    const stop = watchClockSync(clock, { probe });
    const askedBy = async (ms: number) => {
      await vi.advanceTimersByTimeAsync(ms);
      return asked;
    };
    expect(await askedBy(0)).toBe(1); // at start
    expect(clock.synced).toBe(false);
    expect(await askedBy(60_000)).toBe(2);
    expect(await askedBy(60_000)).toBe(3); // synchronised now
    expect(clock.synced).toBe(true);
    expect(await askedBy(9 * 60_000)).toBe(3); // not asked for 10 minutes
    expect(await askedBy(60_000)).toBe(4);
    expect(await askedBy(10 * 60_000)).toBe(5); // lost
    expect(clock.synced).toBe(false);
    expect(await askedBy(60_000)).toBe(6); // every minute again
    stop();
    expect(await askedBy(30 * 60_000)).toBe(6);
  });
});
