/**
 * Is the system clock synchronised (NTP)? A Pi has no real-time clock: until NTP has set it, it
 * may be hours or years off. Asked of whatever the box has, in this order: systemd's `timedatectl`
 * (timesyncd or any NTP client it knows), `chronyc tracking`, timesyncd's flag file. The doctor
 * reports it with the fix; the running gateway re-asks every minute, flags what it records while
 * the clock is not synchronised, and lets an HJ 212 platform set its time (gateway/clock.ts `correct`).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface SyncState {
  /** undefined: nothing on the box could tell */
  synced: boolean | undefined;
  /** what said so */
  source: string;
  detail: string;
}

type Run = (cmd: string, args: string[]) => Promise<string>;

const run: Run = (cmd, args) =>
  new Promise((resolve, reject) => execFile(cmd, args, { timeout: 3000, encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout))));

/** Tools this box does not have (ENOENT once): not started again every minute (each start forks the whole gateway). */
const missing = new Set<string>();
const runKnown: Run = (cmd, args) =>
  missing.has(cmd)
    ? Promise.reject(new Error(`${cmd}: not installed`))
    : run(cmd, args).catch((e: unknown) => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') missing.add(cmd);
        throw e;
      });

export async function probeClockSync(o: { run?: Run; flagFile?: string } = {}): Promise<SyncState> {
  const exec = o.run ?? runKnown;
  try {
    const v = (await exec('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'])).trim();
    if (v === 'yes' || v === 'no') return { synced: v === 'yes', source: 'timedatectl', detail: `NTPSynchronized=${v}` };
  } catch {
    /* no systemd here, or no bus: ask the next */
  }
  try {
    const out = await exec('chronyc', ['-n', 'tracking']);
    const leap = /Leap status\s*:\s*(.+)/.exec(out)?.[1]?.trim();
    if (leap) return { synced: leap === 'Normal', source: 'chronyc', detail: `leap status ${leap}` };
  } catch {
    /* no chrony */
  }
  const flag = o.flagFile ?? '/run/systemd/timesync/synchronized';
  if (existsSync(flag)) return { synced: true, source: 'timesyncd', detail: `${flag} exists` };
  return { synced: undefined, source: 'none', detail: 'neither timedatectl nor chronyc answered' };
}

/** The fix for a clock that is not (known to be) synchronised. */
export const SYNC_FIX =
  'turn NTP on: sudo timedatectl set-ntp true (or install chrony); behind a 4G router allow UDP port 123 out; until then readings are flagged clock "unsynced" and an HJ 212 platform may set the gateway\'s time';

/** Ask now and every `everyMs`; the gateway's clock learns the answer (what it flags its records by). Returns a stop function. */
export function watchClockSync(clock: { synced: boolean | undefined }, o: { logger?: { warn(o: object, m: string): void; info(o: object, m: string): void }; everyMs?: number; probe?: () => Promise<SyncState> } = {}): () => void {
  const probe = o.probe ?? (() => probeClockSync());
  let stopped = false;
  const ask = async () => {
    const s = await probe().catch(() => undefined);
    if (stopped || !s || s.synced === clock.synced) return;
    clock.synced = s.synced;
    if (s.synced === false) o.logger?.warn({ source: s.source, detail: s.detail }, 'clock not synchronised by NTP: records are flagged clock "unsynced" until it is');
    else if (s.synced) o.logger?.info({ source: s.source }, 'clock synchronised by NTP');
  };
  void ask();
  const t = setInterval(() => void ask(), o.everyMs ?? 60_000);
  t.unref();
  return () => {
    stopped = true;
    clearInterval(t);
  };
}
