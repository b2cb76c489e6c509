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

  constructor(
    private readonly system: () => number = Date.now,
    private readonly monotonic: () => number = () => performance.now(),
    private readonly onStep?: (s: ClockStep) => void,
  ) {
    this.lastMono = monotonic();
    this.lastWall = system();
  }

  now(): number {
    const sys = this.system();
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
