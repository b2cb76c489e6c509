/**
 * The samples the rules average (wind, dust, noise): per metric, the last `keepS` of usable values
 * at their monotonic times, in typed arrays with running sums. A window normally grows in time
 * order; a mean then finds its first and last sample by bisection and takes the sum from the
 * running sums: it reads a few cache lines, not every sample. (The rules run twice a second on a
 * process that sleeps in between; on the bench VM every cache line first touched after a sleep costs
 * about a microsecond, so a mean that walked 300 sample objects cost more than the rest of the
 * evaluation: docs/benchmarks.md, ninth look.)
 * A sample stamped before the one ingested last, or a value that is not a finite number of sane
 * size, marks its window `exact`: its means add up the window sample by sample (the same rule:
 * (now - windowS, now]) until the window empties.
 */
import type { Metric } from '../metrics.js';

/** Values beyond this make running sums lose the small ones: such a window is added up sample by sample. */
const SANE = 1e9;

class Window {
  private t: Float64Array = new Float64Array(64);
  private v: Float64Array = new Float64Array(64);
  /** cum[i]: v[0] + … + v[i] (from the front of the arrays, started again at each compaction: within the room × SANE) */
  private cum: Float64Array = new Float64Array(64);
  private start = 0;
  private end = 0;
  /** out of time order or not sane since the window was last empty: means add up sample by sample */
  exact = false;

  get size(): number {
    return this.end - this.start;
  }

  push(t: number, v: number): void {
    if (this.end > this.start && t < this.t[this.end - 1]!) this.exact = true;
    if (!(Math.abs(v) <= SANE)) this.exact = true; // NaN, ±Infinity, huge
    if (this.end === this.t.length) this.compact();
    const i = this.end++;
    this.t[i] = t;
    this.v[i] = v;
    this.cum[i] = (i > 0 ? this.cum[i - 1]! : 0) + v;
  }

  /** Drop the samples at or before `from` from the front (in time order that is all of them). */
  prune(from: number): void {
    while (this.start < this.end && this.t[this.start]! <= from) this.start++;
    if (this.start === this.end) {
      this.start = this.end = 0;
      this.exact = false;
    }
  }

  /** Mean over (now - windowS, now]; null without samples. */
  mean(now: number, windowS: number): number | null {
    const from = now - windowS * 1000;
    const { t, v } = this;
    if (this.exact) {
      let sum = 0;
      let n = 0;
      for (let i = this.start; i < this.end; i++)
        if (t[i]! > from && t[i]! <= now) {
          sum += v[i]!;
          n++;
        }
      return n ? sum / n : null;
    }
    const lo = this.firstAfter(from, this.start);
    const hi = this.end > lo && t[this.end - 1]! <= now ? this.end : this.firstAfter(now, lo);
    if (hi <= lo) return null;
    const sum = this.cum[hi - 1]! - (lo > 0 ? this.cum[lo - 1]! : 0);
    return sum / (hi - lo);
  }

  /** The first index from `i` whose time is after `x` (bisection; the window is in time order). */
  private firstAfter(x: number, i: number): number {
    let hi = this.end;
    while (i < hi) {
      const mid = (i + hi) >>> 1;
      if (this.t[mid]! > x) hi = mid;
      else i = mid + 1;
    }
    return i;
  }

  /** Move the live samples to the front (and double the room when they fill more than half of it); running sums start again. */
  private compact(): void {
    const n = this.end - this.start;
    const cap = n * 2 > this.t.length ? this.t.length * 2 : this.t.length;
    const grow = (a: Float64Array): Float64Array => {
      const b = cap === a.length ? a : new Float64Array(cap);
      b.set(a.subarray(this.start, this.end));
      return b;
    };
    this.t = grow(this.t);
    this.v = grow(this.v);
    if (cap !== this.cum.length) this.cum = new Float64Array(cap);
    let s = 0;
    for (let i = 0; i < n; i++) this.cum[i] = s += this.v[i]!;
    this.start = 0;
    this.end = n;
  }
}

export class MeanWindows {
  private readonly windows: Partial<Record<Metric, Window>> = {};

  push(m: Metric, s: { t: number; v: number }): void {
    (this.windows[m] ??= new Window()).push(s.t, s.v);
  }

  /** Mean of `m` over (now - windowS, now]; null without samples. */
  mean(m: Metric, now: number, windowS: number): number | null {
    return this.windows[m]?.mean(now, windowS) ?? null;
  }

  /** Drop the samples at or before `from` (from the front of each window). */
  prune(from: number): void {
    for (const m in this.windows) this.windows[m as Metric]!.prune(from);
  }

  /** Samples held for `m` (tests, diagnostics). */
  size(m: Metric): number {
    return this.windows[m]?.size ?? 0;
  }
}
