/** gateway/rules-clock.ts: when the gateway runs its rules with no reading (fake timers; the clock is monotonic ms). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RulesClock } from '../../gateway/rules-clock.js';

describe('rules clock', () => {
  let runs: { at: number; beat: boolean }[];
  let clock: RulesClock;
  const mono = () => performance.now();
  beforeEach(() => {
    vi.useFakeTimers();
    runs = [];
    clock = new RulesClock({ periodMs: 1000, mono, run: (beat) => runs.push({ at: Math.round(mono()), beat }) });
  });
  afterEach(() => {
    clock.stop();
    vi.useRealTimers();
  });

  it('a heartbeat at start and every period with no poll cycle', () => {
    const t0 = Math.round(mono());
    clock.start();
    vi.advanceTimersByTime(3500);
    expect(runs.map((r) => [r.at - t0, r.beat])).toEqual([
      [0, true],
      [1000, true],
      [2000, true],
      [3000, true],
    ]);
  });

  it('a poll cycle that ends within a quarter period of the beat takes it (no wake-up of its own), an earlier one does not', () => {
    const t0 = Math.round(mono());
    clock.start();
    vi.advanceTimersByTime(700);
    clock.cycleEnd(); // 700 ms after the beat: too early
    vi.advanceTimersByTime(100);
    clock.cycleEnd(); // 800 ms: taken now, and the timer moves with it
    vi.advanceTimersByTime(1000);
    expect(runs.map((r) => r.at - t0)).toEqual([0, 800, 1800]);
  });

  it('a deadline runs at its time; an earlier one replaces it, a later one waits for the next arm', () => {
    const t0 = mono();
    clock.start();
    runs = [];
    clock.arm(t0 + 500);
    clock.arm(t0 + 300); // earlier: replaces
    clock.arm(t0 + 900); // later: the run at 300 arms again (as the gateway does after each evaluation)
    vi.advanceTimersByTime(600);
    expect(runs).toEqual([{ at: Math.round(t0 + 300), beat: false }]);
    clock.arm(t0 + 900);
    vi.advanceTimersByTime(350);
    expect(runs.map((r) => [r.at - Math.round(t0), r.beat])).toEqual([
      [300, false],
      [900, false],
    ]);
  });

  it('Infinity and NaN arm nothing; stop cancels everything', () => {
    const t0 = mono();
    clock.start();
    runs = [];
    clock.arm(Infinity);
    clock.arm(Number.NaN);
    vi.advanceTimersByTime(999);
    expect(runs).toEqual([]);
    clock.arm(t0 + 1500);
    clock.stop();
    vi.advanceTimersByTime(5000);
    expect(runs).toEqual([]);
    clock.cycleEnd(); // stopped: no beat either
    expect(runs).toEqual([]);
  });

  it('a deadline the clock passed before it was armed runs on the next turn, once, not at the next heartbeat', () => {
    // the gateway evaluates at t, the engine names t + 1 ms, and the clock reads t + 1 when arm is called
    const t0 = mono();
    clock.start();
    runs = [];
    clock.arm(t0);
    clock.arm(t0 - 5);
    expect(runs).toEqual([]); // not from inside arm: the caller is still in its evaluation
    vi.advanceTimersByTime(1);
    expect(runs).toEqual([{ at: Math.round(t0), beat: false }]);
    vi.advanceTimersByTime(998);
    expect(runs).toHaveLength(1);
  });
});
