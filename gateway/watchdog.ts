/**
 * systemd's service notifications (sd_notify): READY=1 after the first poll cycle and store write,
 * WATCHDOG=1 only while the control loop makes progress, STATUS= a one-line summary (degraded
 * states included), STOPPING=1 on shutdown.
 *
 * Progress, between two pings: the rules were evaluated; no device's poll is overdue (or stuck in
 * flight) by more than `stallMs`; no output command has waited longer than `stallMs`. A stuck loop
 * stops the pings and systemd restarts the service (`WatchdogSec=` in the unit written by
 * `dustgate install-service`). A store that cannot write is reported in STATUS and by events but
 * does not stop the pings: a restart would not free the disk.
 *
 * The datagrams go through `unix-dgram` (Node has no Unix datagram sockets of its own): a small,
 * maintained native binding with no library behind it, so it builds wherever better-sqlite3 does
 * (libsystemd's `sd-notify` binding would need libsystemd-dev on the build host, and spawning
 * `systemd-notify` per ping needs NotifyAccess=all and races the short-lived child's exit).
 */
import { createRequire } from 'node:module';
import type { Logger } from './log.js';

export interface WatchdogHost {
  readonly counters: { readonly evaluations: number; readonly readings: number };
  readonly rt: {
    readonly poller: { lagMs(readAllowanceMs: number): number; readonly firstCycleDone: boolean };
    readonly outputs: { pendingMs(): number };
    readonly devices: Map<string, { readonly status: string }>;
  };
  readonly storage: { status(): { state: string; code: string | null } };
  readonly uplinks: readonly { readonly name: string; readonly connected: boolean }[];
  readonly store: { readonly depth: number };
}

/** Sends notification datagrams to `NOTIFY_SOCKET`; a no-op without one. */
export class SystemdNotifier {
  private socket: { send(b: Buffer, off: number, len: number, path: string, cb?: (e?: Error) => void): void; close(): void; on(ev: string, f: (e: Error) => void): void } | undefined;
  private readonly path: string | undefined;

  constructor(
    socketPath: string | undefined = process.env.NOTIFY_SOCKET,
    private readonly logger?: Logger,
  ) {
    // an abstract socket is written with a leading @
    this.path = socketPath ? (socketPath.startsWith('@') ? `\0${socketPath.slice(1)}` : socketPath) : undefined;
    if (!this.path) return;
    const unix = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): NonNullable<SystemdNotifier['socket']> };
    this.socket = unix.createSocket('unix_dgram');
    this.socket.on('error', (e) => this.logger?.warn({ err: e.message }, `systemd notify: ${e.message}`));
  }

  get enabled(): boolean {
    return this.socket !== undefined;
  }

  /** One datagram: `KEY=value` lines. */
  send(fields: Record<string, string>): void {
    if (!this.socket || !this.path) return;
    const b = Buffer.from(Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}`).join('\n'));
    try {
      this.socket.send(b, 0, b.length, this.path);
    } catch (e) {
      this.logger?.warn({ err: (e as Error).message }, `systemd notify: ${(e as Error).message}`);
    }
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}

/** The ping interval systemd asks for (half of WatchdogSec), or undefined without a watchdog. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(50, usec / 1000 / 2);
}

/** The one-line STATUS: what runs, and every degraded part. */
export function statusLine(gw: WatchdogHost, stalled?: string): string {
  const devs = [...gw.rt.devices].filter(([, d]) => d.status !== 'online').map(([id]) => id);
  const st = gw.storage.status();
  const parts = [`${gw.rt.devices.size - devs.length}/${gw.rt.devices.size} devices online${devs.length ? ` (offline: ${devs.join(', ')})` : ''}`];
  parts.push(st.state === 'ok' ? `buffer ${gw.store.depth}` : `store ${st.state} (${st.code})`);
  for (const u of gw.uplinks) parts.push(`${u.name} ${u.connected ? 'up' : 'down'}`);
  const degraded = stalled || devs.length || st.state !== 'ok' || gw.uplinks.some((u) => !u.connected);
  return `${stalled ? `stalled: ${stalled}` : degraded ? 'degraded' : 'running'}: ${parts.join(', ')}`;
}

export interface WatchdogOptions {
  /** ms between checks (and pings); default: half of systemd's WATCHDOG_USEC, or 10 s for STATUS only */
  intervalMs?: number;
  /** how far behind the polling or the outputs may be before the loop counts as stuck */
  stallMs?: number;
  logger?: Logger;
}

export class Watchdog {
  private timer: NodeJS.Timeout | undefined;
  private lastEvaluations = -1;
  private readonly intervalMs: number;
  private readonly pings: boolean;
  private readonly stallMs: number;
  private lastStall: string | undefined;

  constructor(
    private readonly gw: WatchdogHost,
    private readonly notifier: SystemdNotifier,
    private readonly o: WatchdogOptions = {},
  ) {
    const fromSystemd = watchdogIntervalMs();
    this.pings = o.intervalMs !== undefined || fromSystemd !== undefined;
    this.intervalMs = o.intervalMs ?? fromSystemd ?? 10_000;
    this.stallMs = o.stallMs ?? 30_000;
  }

  /** READY=1 once every device was polled once and the first reading went to the store (waits at most `maxWaitMs`). */
  async ready(maxWaitMs = 60_000): Promise<void> {
    const t0 = performance.now();
    while (!(this.gw.rt.poller.firstCycleDone && this.gw.counters.readings > 0) && performance.now() - t0 < maxWaitMs) await new Promise((r) => setTimeout(r, 50));
    this.lastEvaluations = this.gw.counters.evaluations;
    this.notifier.send({ READY: '1', STATUS: statusLine(this.gw) });
    this.timer = setInterval(() => this.check(), this.intervalMs);
  }

  /** Why the control loop is stuck, or undefined when it made progress since the last check. */
  stalled(): string | undefined {
    const gw = this.gw;
    if (gw.counters.evaluations === this.lastEvaluations) return 'the rules were not evaluated';
    const lag = gw.rt.poller.lagMs(this.stallMs);
    if (lag > this.stallMs) return `polling is ${Math.round(lag / 1000)} s behind`;
    const pending = gw.rt.outputs.pendingMs();
    if (pending > this.stallMs) return `an output command has waited ${Math.round(pending / 1000)} s`;
    return undefined;
  }

  private check(): void {
    try {
      this.checkNow();
    } catch (e) {
      // never throw into a timer: a gateway that cannot even say how it is gets no ping
      this.o.logger?.error({ err: String(e) }, `watchdog: ${String(e)}`);
    }
  }

  private checkNow(): void {
    const why = this.stalled();
    this.lastEvaluations = this.gw.counters.evaluations;
    if (why !== this.lastStall) {
      if (why) this.o.logger?.error({ stalled: why }, `watchdog: control loop stalled (${why}); no more pings, systemd will restart the gateway`);
      else if (this.lastStall) this.o.logger?.info('watchdog: control loop runs again');
      this.lastStall = why;
    }
    const status = statusLine(this.gw, why);
    this.notifier.send(!why && this.pings ? { WATCHDOG: '1', STATUS: status } : { STATUS: status });
  }

  /** STOPPING=1, and no more pings. */
  stopping(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.notifier.send({ STOPPING: '1', STATUS: 'stopping: switching outputs off' });
  }
}
