/**
 * The backoff a vanished port or board is looked for with: the first retry after `initialMs`,
 * each next one twice as late, up to `maxMs`; back to `initialMs` once it opened.
 */
export class Reopener {
  private delay: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly attempt: () => void,
    private readonly initialMs = 250,
    private readonly maxMs = 5000,
  ) {
    this.delay = initialMs;
  }

  /** Try again after the current delay (no-op if a try is already scheduled). */
  schedule(): void {
    if (this.timer) return;
    const delay = this.delay;
    this.delay = Math.min(this.delay * 2, this.maxMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.attempt();
    }, delay);
    this.timer.unref();
  }

  /** It opened: the next loss starts from the first delay again. */
  reset(): void {
    this.delay = this.initialMs;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
