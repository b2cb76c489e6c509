/**
 * Reconnecting, one way for every link: serial lines and Firmata boards (`Reopener`), the MQTT
 * broker and HJ 212 platforms (`Backoff` directly).
 *
 * Exponential backoff with full jitter: the n-th wait is uniform in [0, min(maxMs, initialMs·2ⁿ)].
 * After a broker or platform outage a fleet of gateways does not come back in lockstep: their
 * attempts spread over the whole window (and the mean wait is half the ceiling).
 */
export class Backoff {
  private n = 0;

  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
    /** [0, 1): tests can fix it */
    private readonly random: () => number = Math.random,
  ) {}

  /** The ceiling of the next wait (before jitter). */
  get ceilingMs(): number {
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.n, 40));
  }

  /** The next wait, in ms. */
  next(): number {
    const d = Math.floor(this.random() * this.ceilingMs);
    this.n++;
    return d;
  }

  /** It connected: the next loss starts from the first ceiling again. */
  reset(): void {
    this.n = 0;
  }
}

/** Looks for a vanished port or board again after each `Backoff` wait; back to the start once it opened. */
export class Reopener {
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly attempt: () => void,
    initialMs = 250,
    maxMs = 5000,
  ) {
    this.backoff = new Backoff(initialMs, maxMs);
  }

  /** Try again after the next wait (no-op if a try is already scheduled). */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.attempt();
    }, this.backoff.next());
    this.timer.unref();
  }

  /** It opened: the next loss starts from the first delay again. */
  reset(): void {
    this.backoff.reset();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
