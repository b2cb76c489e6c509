/**
 * Is the system clock synchronised (NTP)? A Pi has no real-time clock: until NTP has set it, it
 * may be hours or years off. Asked of whatever the box has, in this order: systemd's `timedatectl`
 * (timesyncd or any NTP client it knows), `chronyc tracking`, timesyncd's flag file. The doctor
 * reports it with the fix; the running gateway re-asks (every minute until synchronised, then every
 * 10 minutes), flags what it records while the clock is not synchronised, and lets an HJ 212
 * platform set its time (gateway/clock.ts `correct`).
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

/**
 * What the probe knows of the box's tools. Each ask forks the whole gateway (about 5 ms of the
 * gateway's CPU on the bench VM, more page-table copying on a Pi), so a tool that is not installed
 * (ENOENT) is not started again, and one that is there but cannot answer (timedatectl in a container
 * "not booted with systemd", or before D-Bus is up) is asked again after 1, 2, 4 … up to 16 minutes
 * (the next source is asked meanwhile); an answer resets its wait.
 */
export class ProbeTools {
  private readonly missing = new Set<string>();
  private readonly failing = new Map<string, { fails: number; until: number }>();
  constructor(
    private readonly exec: Run = run,
    /** monotonic ms */
    private readonly mono: () => number = () => performance.now(),
  ) {}

  run(cmd: string, args: string[]): Promise<string> {
    if (this.missing.has(cmd)) return Promise.reject(new Error(`${cmd}: not installed`));
    const f = this.failing.get(cmd);
    if (f && this.mono() < f.until) return Promise.reject(new Error(`${cmd}: failed ${f.fails} times; asked again later`));
    return this.exec(cmd, args).then(
      (out) => {
        this.failing.delete(cmd);
        return out;
      },
      (e: unknown) => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.missing.add(cmd);
        else {
          const fails = (f?.fails ?? 0) + 1;
          this.failing.set(cmd, { fails, until: this.mono() + Math.min(2 ** (fails - 1), TOOL_WAIT_MAX_MIN) * 60_000 });
        }
        throw e;
      },
    );
  }
}
const TOOL_WAIT_MAX_MIN = 16;
const tools = new ProbeTools();

/**
 * Was the box booted with systemd (what `sd_booted()` checks)? Without it `timedatectl` cannot
 * answer ("System has not been booted with systemd as init system": containers, OpenRC boxes).
 */
export const systemdBooted = (dir = '/run/systemd/system') => existsSync(dir);

/** Ask the box. `systemd: false` leaves `timedatectl` out (it cannot answer there; each ask is a fork). */
export async function probeClockSync(o: { run?: Run; flagFile?: string; tools?: ProbeTools; systemd?: boolean } = {}): Promise<SyncState> {
  const t = o.tools ?? tools;
  const exec = o.run ?? ((cmd: string, args: string[]) => t.run(cmd, args));
  if (o.systemd !== false) {
    try {
      const v = (await exec('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'])).trim();
      if (v === 'yes' || v === 'no') return { synced: v === 'yes', source: 'timedatectl', detail: `NTPSynchronized=${v}` };
    } catch {
      /* no systemd here, or no bus: ask the next */
    }
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

/**
 * Ask now, then every `everyMs` (1 min) while the clock is not known to be synchronised, and every
 * `syncedEveryMs` (10 min) once it is (a synchronised clock seldom loses it; each ask is a fork).
 * The gateway's clock learns the answer (what it flags its records by). On a box not booted with
 * systemd, `timedatectl` is not asked. Returns a stop function.
 */
export function watchClockSync(
  clock: { synced: boolean | undefined },
  o: { logger?: { warn(o: object, m: string): void; info(o: object, m: string): void }; everyMs?: number; syncedEveryMs?: number; probe?: () => Promise<SyncState> } = {},
): () => void {
  // the running gateway does not start timedatectl on a box not booted with systemd (the doctor, a
  // one-shot, still asks it and says what it answered)
  const systemd = systemdBooted();
  const probe = o.probe ?? (() => probeClockSync({ systemd }));
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const ask = async () => {
    const s = await probe().catch(() => undefined);
    if (stopped) return;
    if (s && s.synced !== clock.synced) {
      clock.synced = s.synced;
      if (s.synced === false) o.logger?.warn({ source: s.source, detail: s.detail }, 'clock not synchronised by NTP: records are flagged clock "unsynced" until it is');
      else if (s.synced) o.logger?.info({ source: s.source }, 'clock synchronised by NTP');
    }
    timer = setTimeout(() => void ask(), clock.synced === true ? (o.syncedEveryMs ?? 600_000) : (o.everyMs ?? 60_000));
    timer.unref();
  };
  void ask();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
