/**
 * When the rules run without a reading (issue 17). A reading of a rule device runs them at once (the
 * gateway does that). Time alone moves them in two ways:
 * - a **deadline** the engine knows (`RulesEngine.nextDeadline`: a pulse's end, maxOnS, a spray
 *   phase, the temperature going stale): a timer for that moment, re-armed after every evaluation;
 * - everything that drifts (means as samples age out, night hours, the ban window) and the data
 *   path's clocks: a **heartbeat** every `periodMs`, taken at the end of a poll cycle when one is
 *   near (the process is awake then anyway), else by its own timer.
 * Before this, a 250 ms interval ran all of it four times a second, most of the time waking an idle
 * process for nothing. Timers are relative (monotonic): a wall-clock step moves none of them.
 */
export interface RulesClockOptions {
  /** heartbeat period (ms) */
  periodMs: number;
  /** monotonic ms */
  mono: () => number;
  /** a heartbeat (true) or a deadline (false) */
  run: (heartbeat: boolean) => void;
}

export class RulesClock {
  private beatTimer: NodeJS.Timeout | undefined;
  private lastBeat = -Infinity;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private dueAt = Infinity;
  private running = false;

  constructor(private readonly o: RulesClockOptions) {}

  start(): void {
    this.running = true;
    this.heartbeat();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.beatTimer);
    clearTimeout(this.deadlineTimer);
    this.beatTimer = this.deadlineTimer = undefined;
    this.dueAt = Infinity;
  }

  /** A poll cycle ended: take the heartbeat now if it is due within a quarter period. */
  cycleEnd(): void {
    if (this.running && this.o.mono() - this.lastBeat >= this.o.periodMs * 0.75) this.heartbeat();
  }

  /**
   * Run at `deadline` (monotonic ms) unless a timer already runs earlier; Infinity or NaN: nothing. A
   * deadline already reached runs on the next turn of the loop: the engine names a moment after the
   * instant it evaluated, and the clock may pass it before this is called (dropping it would leave a
   * pulse or a timed command on until the next heartbeat).
   */
  arm(deadline: number): void {
    if (!this.running || !Number.isFinite(deadline)) return;
    const now = this.o.mono();
    // a timer still armed for a moment already past (a scaled test clock) does not hold a new one back
    if (!(deadline < this.dueAt || this.dueAt <= now)) return;
    const wait = Math.max(0, deadline - now);
    clearTimeout(this.deadlineTimer);
    this.dueAt = deadline;
    // libuv counts whole ms and may fire up to one early: a deadline still ahead is re-armed by the run
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = undefined;
      this.dueAt = Infinity;
      this.o.run(false);
    }, Math.ceil(wait));
  }

  private heartbeat(): void {
    this.lastBeat = this.o.mono();
    clearTimeout(this.beatTimer);
    this.beatTimer = setTimeout(() => this.heartbeat(), this.o.periodMs);
    this.o.run(true);
  }
}
