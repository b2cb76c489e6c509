/** Beaufort level per GB/T 28591-2012 from a wind speed in m/s, rounded to 0.1 m/s first. */
const UPPER = [0.2, 1.5, 3.3, 5.4, 7.9, 10.7, 13.8, 17.1, 20.7, 24.4, 28.4, 32.6, 36.9, 41.4, 46.1, 50.9, 56.0];

export function beaufort(speedMs: number): number {
  const v = Math.round(speedMs * 10) / 10;
  const i = UPPER.findIndex((u) => v <= u);
  return i === -1 ? 17 : i;
}
