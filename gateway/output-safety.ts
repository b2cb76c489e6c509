/**
 * The outputs' fail-safe (SPEC §1): when the rules cannot run, or the gateway cannot go on, every
 * relay channel is switched off and read back; a channel that does not confirm off is an
 * `output_fault`.
 */
import type { Clock } from './clock.js';
import type { Logger } from './log.js';
import type { RuleEvent } from './rules/engine.js';
import type { Runtime } from './runtime.js';

export interface SafetyHost {
  readonly rt: Runtime;
  readonly logger: Logger;
  readonly clock: Clock;
  now(): number;
  record(events: RuleEvent[]): void;
}

export class OutputSafety {
  private rulesFailing = false;
  private lastFailOff = -Infinity;

  constructor(private readonly gw: SafetyHost) {}

  /** Relay channels that did not confirm off (start-up, shutdown, fail-safe): an output_fault each. */
  reportStuck(stuck: { device: string; channel: number; actual: 'on' | 'unknown' }[], when: string): void {
    if (!stuck.length) return;
    this.gw.logger.warn({ channels: stuck, when }, `relay channels not confirmed off at ${when}`);
    this.gw.record(stuck.map((c) => ({ type: 'output_fault', ts: this.gw.now(), output: `${c.device}.ch${c.channel}`, device: c.device, channel: c.channel, wanted: 'off', actual: c.actual, reason: 'no_confirmation' })));
  }

  /**
   * The rules could not run: every output off and read back, again every 5 s while it lasts (not on
   * every tick: the line stays free for polling); the rules are tried on every tick.
   */
  rulesFailed(e: unknown): void {
    if (!this.rulesFailing) this.gw.logger.error({ err: String(e), stack: (e as Error).stack }, `rules failed: ${String(e)}; every output off`);
    this.rulesFailing = true;
    const mono = this.gw.clock.mono();
    if (mono - this.lastFailOff < 5000) return;
    this.lastFailOff = mono;
    void this.gw.rt.allOff().then((stuck) => this.reportStuck(stuck, 'rules failure'));
  }

  /** The rules ran again. */
  rulesRan(): void {
    if (this.rulesFailing) this.gw.logger.info('rules run again');
    this.rulesFailing = false;
  }

  /** A fatal error: polling stops, every relay channel off and read back. Never throws. */
  async failSafe(reason: string): Promise<void> {
    this.gw.logger.fatal({ reason }, `fail-safe: ${reason}; switching every output off`);
    try {
      await this.gw.rt.poller.stop();
    } catch {
      /* going down anyway */
    }
    try {
      const stuck = await this.gw.rt.allOff();
      this.gw.logger.fatal({ outputs: this.gw.rt.outputs.actual, notConfirmed: stuck }, 'fail-safe: outputs off');
      for (const l of this.gw.rt.lights) l.setLight('off');
    } catch (e) {
      this.gw.logger.fatal({ err: String(e) }, 'fail-safe: switching off failed');
    }
  }
}
