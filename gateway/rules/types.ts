/** The shapes the rules engine (engine.ts) takes and gives: its config, its commands, its state per output. */
import type { DustgateEvent } from '../contract.js';
import type { Metric } from '../metrics.js';
import type { BlockReason } from './decisions.js';
import type { Rules } from './schema.js';

/** An output as the rules see it (the config's outputs have this shape and more). */
export interface OutputSettings {
  device: string;
  channel: number;
  kind?: 'road' | 'greenbelt';
  pulseMs?: number;
  maxOnS?: number;
  minOffS?: number;
}

/** An input as the rules see it. */
export interface InputSettings {
  device: string;
  channel: number;
  kind: 'video-trigger' | 'earthwork-activity';
  debounceMs: number;
}

export interface EngineConfig {
  rules: Rules;
  outputs: Record<string, OutputSettings>;
  inputs: Record<string, InputSettings>;
  /** metric → device whose value the rules use */
  sources: Partial<Record<Metric, string>>;
  timezone: string;
}

/** The events the rules (and the gateway) record: the contract's union (gateway/contract.ts). */
export type RuleEvent = DustgateEvent;

export interface OutputCommand {
  output: string;
  on: boolean;
  reason: string;
}

export interface OutputRequestResult {
  ok: boolean;
  code?: BlockReason | 'min_off_time' | 'unknown_output' | 'alarm_active';
  message?: string;
}

export interface OutputState {
  on: boolean;
  since: number;
  offSince: number | null;
  /** pulse outputs and timed commands: switch off at this time */
  offAt: number | null;
}
