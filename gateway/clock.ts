/**
 * The gateway's two clocks (SPEC §1 safety): a monotonic one for every duration (pulses, maxOnS,
 * minOffS, spray and rest, debounce, means, resume delays, poll cadence) and a wall clock for
 * timestamps and calendar rules (aggregate periods, night hours, the ban window).
 *
 * The wall clock handed out here never goes back: a backward step of the system clock (NTP
 * correcting a clock that ran ahead, an operator's `date -s`) is not followed; the gateway's time
 * runs on from its last value at the monotonic rate until the system clock catches up, so no
 * aggregate period is made twice and no timestamp goes backwards. A forward step is followed at
 * once (a Pi without a real-time clock that boots in the past and is then set right). Each step is
 * reported once through `onStep`.
 */
import { performance } from 'node:perf_hooks';

export interface Clock {
  /** Wall time (ms since the epoch) for timestamps and calendar rules; never decreases. */
  now(): number;
  /** Monotonic ms for durations. */
  mono(): number;
  /** The wall time that a monotonic instant corresponds to. */
  wallOf(mono: number): number;
  /** The monotonic instant of a wall timestamp taken a moment ago (a reading's ts). */
  monoOf(wall: number): number;
  /** NTP state as last asked (gateway/clock-sync.ts); undefined: not known */
  synced: boolean | undefined;
  /** What each stored record carries about the clock: `{clock: "unsynced"}` while NTP has not set it, `{clock: "platform"}` once a platform set it, else nothing. */
  readonly recordFlag: Readonly<Record<string, string>>;
  /** Set the gateway's time from a trusted source (an HJ 212 platform's 1012): returns the correction in ms (0: within 2 s, nothing done). */
  correct(trueNow: number): number;
}

export interface ClockStep {
  /** system clock minus where the gateway's clock would be, ms (negative: the clock went back) */
  deltaMs: number;
  /** 'followed' for forward steps, 'held' while a backward step is waited out */
  action: 'followed' | 'held';
}

/** Steps smaller than this are ordinary NTP slewing and jitter. */
const STEP_MS = 2000;

export class GatewayClock implements Clock {
  private lastWall: number;
  private lastMono: number;
  private holding = false;
  /** added to the system clock: a platform's correction of a clock NTP has not set */
  private offset = 0;
  private corrected = false;
  synced: boolean | undefined = undefined;
  private static readonly NONE = Object.freeze({});
  private static readonly UNSYNCED = Object.freeze({ clock: 'unsynced' });
  private static readonly PLATFORM = Object.freeze({ clock: 'platform' });

  constructor(
    private readonly system: () => number = Date.now,
    private readonly monotonic: () => number = () => performance.now(),
    private readonly onStep?: (s: ClockStep) => void,
  ) {
    this.lastMono = monotonic();
    this.lastWall = system();
  }

  get recordFlag(): Readonly<Record<string, string>> {
    if (this.synced !== false) return GatewayClock.NONE;
    return this.corrected ? GatewayClock.PLATFORM : GatewayClock.UNSYNCED;
  }

  correct(trueNow: number): number {
    const delta = trueNow - this.now();
    if (Math.abs(delta) < STEP_MS) return 0;
    this.offset += delta;
    this.corrected = true;
    if (delta > 0) {
      // forward: followed at once, and not reported as a step (the caller reports the correction)
      this.lastWall = trueNow;
      this.lastMono = this.monotonic();
    } else this.holding = true; // back: waited out at the monotonic rate, like a backward step
    return Math.round(delta);
  }

  now(): number {
    const sys = this.system() + this.offset;
    const m = this.monotonic();
    const expected = this.lastWall + (m - this.lastMono);
    const delta = sys - expected;
    let wall: number;
    if (delta < -STEP_MS) {
      // the system clock went back: run on from where we were
      wall = expected;
      if (!this.holding) {
        this.holding = true;
        this.onStep?.({ deltaMs: Math.round(delta), action: 'held' });
      }
    } else {
      // (while a backward step is waited out, the system clock only comes closer: never by a jump)
      if (delta > STEP_MS) this.onStep?.({ deltaMs: Math.round(delta), action: 'followed' });
      this.holding = false;
      wall = Math.max(sys, this.lastWall);
    }
    this.lastWall = wall;
    this.lastMono = m;
    return wall;
  }

  mono(): number {
    return this.monotonic();
  }

  wallOf(mono: number): number {
    return this.now() + (mono - this.monotonic());
  }

  monoOf(wall: number): number {
    return this.monotonic() - (this.now() - wall);
  }
}

/**
 * A clock for a gateway given only a wall clock (tests with a fake or scaled clock that does not
 * step): that clock is also the monotonic one.
 */
export function clockFrom(now: () => number, mono?: () => number, onStep?: (s: ClockStep) => void): GatewayClock {
  return new GatewayClock(now, mono ?? now, onStep);
}
