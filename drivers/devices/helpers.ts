/** Small builders for register maps, so a definition reads like the datasheet's table. */
import { metricUnits } from '../../gateway/metrics.js';
import type { ChannelBank, RegisterSpec, RegisterType, WordOrder } from './types.js';

interface Opts {
  fn?: 3 | 4;
  type?: RegisterType;
  wordOrder?: WordOrder;
  unit?: string;
}

/** Units come from the metric catalog. */
export const unitOf = (metric: string): string => metricUnits()[metric] ?? '';

/** A register whose raw value times `scale` is the metric. */
export function scaled(metric: string, address: number, scale: number, o: Opts = {}): RegisterSpec {
  return {
    metric,
    address,
    scale,
    fn: o.fn ?? 3,
    type: o.type ?? 'u16',
    wordOrder: o.wordOrder ?? 'be',
    unit: o.unit ?? unitOf(metric),
  };
}

export const u16 = (metric: string, address: number, o: Opts = {}): RegisterSpec => scaled(metric, address, 1, o);
export const s16 = (metric: string, address: number, scale = 1, o: Opts = {}): RegisterSpec =>
  scaled(metric, address, scale, { ...o, type: 's16' });

export const coils = (count: number, address = 0): ChannelBank => ({ fn: 1, address, count, writable: true });
export const discreteInputs = (count: number, address = 0): ChannelBank => ({ fn: 2, address, count, writable: false });

/** Metric name of channel `n` (from 1) in readings: `ch1`, `ch2`, … */
export const channelMetric = (n: number): string => `ch${n}`;
