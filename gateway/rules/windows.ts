/**
 * The samples the rules average (wind, dust, noise): per metric, the last `keepS` of usable values
 * at their monotonic times. A window normally grows in time order; the means then start at the
 * window's first sample (bisection). A sample stamped before the one ingested last marks its window
 * unsorted, and its means scan the whole window (as they always did) until the window empties.
 */
import type { Metric } from '../metrics.js';
import { meanOver, type Sample } from './decisions.js';

export class MeanWindows {
  private readonly windows: Partial<Record<Metric, Sample[]>> = {};
  private readonly unsorted = new Set<Metric>();

  push(m: Metric, s: Sample): void {
    const w = (this.windows[m] ??= []);
    if (w.length && s.t < w[w.length - 1]!.t) this.unsorted.add(m);
    w.push(s);
  }

  /** Mean of `m` over (now - windowS, now]; null without samples. */
  mean(m: Metric, now: number, windowS: number): number | null {
    return meanOver(this.windows[m] ?? [], now, windowS, !this.unsorted.has(m));
  }

  /** Drop the samples at or before `from` (from the front of each window). */
  prune(from: number): void {
    for (const m in this.windows) {
      const w = this.windows[m as Metric]!;
      let i = 0;
      while (i < w.length && w[i]!.t <= from) i++;
      if (i) w.splice(0, i);
      if (!w.length) this.unsorted.delete(m as Metric);
    }
  }
}
