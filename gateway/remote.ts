/**
 * Remote operations (SPEC §8 inbound, §12): `P/config/set` and `P/cmd/<name>`, also for the
 * gateway's group and for all gateways. Every message is checked (size, JSON, signature and time
 * window when `remote.hmacKey` is set, a request id never seen before, the allow list) before it
 * can change anything; every accepted or refused one is an event with its request id and topic,
 * and is answered on `P/config/result` or `P/cmd/result`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ALERT_LEVELS, type AlertLevel } from './config/schema.js';
import type { GatewayDevice } from '../drivers/device.js';
import type { Clock } from './clock.js';
import type { ApplyMeta, ApplyResult, ConfigChange } from './config-apply.js';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import { COMMANDS, TOPIC, topics, type CommandName, type EventOrigin, type ResultTopic } from './contract.js';
import type { OutputRequestResult, RuleEvent } from './rules/engine.js';
import type { ConfigVersions, ReplayIds } from './store-tables.js';

/** What remote operations need of the gateway (it implements this; nothing here reaches further). */
export interface RemoteHost {
  readonly id: string;
  readonly config: Config;
  readonly version: number;
  readonly startedAt: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly devices: Map<string, GatewayDevice>;
  readonly engine: { readonly alertLevel: AlertLevel };
  readonly store: { readonly replay: ReplayIds; readonly versions: Pick<ConfigVersions, 'history'> };
  now(): number;
  record(events: RuleEvent[]): void;
  applyConfigs(items: { change: ConfigChange; meta: ApplyMeta }[]): Promise<ApplyResult[]>;
  setAlertLevel(level: AlertLevel, why: EventOrigin): void;
  requestOutput(name: string, on: boolean, opts: { durationS?: number; by?: string; requestId?: string }): OutputRequestResult;
  /** Send the buffered records of [from, to] again; how many. */
  republish(from: number, to: number): number;
}

/** Where the answers go: `config/result` or `cmd/result` under the gateway's prefix (the gateway publishes them). */
export type Reply = (topic: ResultTopic, payload: string) => void;
import { flagValues } from './reading.js';

export const MAX_PAYLOAD = 1024 * 1024;
/** A config is a few levels deep; a message nested deeper is refused before anything recurses into it. */
export const MAX_DEPTH = 32;
const REQUEST_ID = /^[\w.:-]{1,128}$/;

export interface RemoteRefusal {
  code: string;
  message: string;
}

/** The HMAC-SHA256 signature of a body text, hex. */
export function sign(body: string, key: string): string {
  return createHmac('sha256', key).update(body).digest('hex');
}

/** Wrap a request in the signed envelope `{body, sig}` (adds ts). */
export function signedEnvelope(request: Record<string, unknown>, key: string, now = Date.now()): string {
  const body = JSON.stringify({ ...request, ts: request.ts ?? now });
  return JSON.stringify({ body, sig: sign(body, key) });
}

class Refused extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

export class RemoteHandler {
  constructor(
    private readonly gw: RemoteHost,
    private readonly reply: Reply,
  ) {}

  private get prefix(): string {
    return this.gw.config.mqtt.topicPrefix;
  }

  /** Topics to subscribe to. */
  topics(): string[] {
    const c = this.gw.config;
    const p = c.mqtt.topicPrefix;
    const t = [topics.of(p, c.gateway.id, TOPIC.configSet), topics.cmd(p, c.gateway.id, '+'), topics.cmdAll(p, '+')];
    if (c.mqtt.group) t.push(topics.cmdGroup(p, c.mqtt.group, '+'));
    return t;
  }

  /** What a topic asks for, or undefined if it is not ours. */
  private route(topic: string): { kind: 'config' } | { kind: 'cmd'; name: string; scope: 'gateway' | 'group' | 'all' } | undefined {
    const c = this.gw.config;
    if (topic === topics.of(this.prefix, c.gateway.id, TOPIC.configSet)) return { kind: 'config' };
    const tail = (cmdTopic: string) => (topic.startsWith(cmdTopic) ? topic.slice(cmdTopic.length) : undefined);
    let name = tail(topics.cmd(this.prefix, c.gateway.id, ''));
    if (name === 'result') return undefined; // our own answers (P/cmd/+ matches them too)
    if (name !== undefined) return { kind: 'cmd', name, scope: 'gateway' };
    name = tail(topics.cmdAll(this.prefix, ''));
    if (name !== undefined) return { kind: 'cmd', name, scope: 'all' };
    if (c.mqtt.group) {
      name = tail(topics.cmdGroup(this.prefix, c.mqtt.group, ''));
      if (name !== undefined) return { kind: 'cmd', name, scope: 'group' };
    }
    return undefined;
  }

  /** Check a message and return its request body; throws Refused. */
  private open(payload: Buffer): Record<string, unknown> {
    const r = this.gw.config.remote;
    if (payload.length > MAX_PAYLOAD) throw new Refused('too_large', `payload of ${payload.length} bytes is over the ${MAX_PAYLOAD}-byte limit`);
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch (e) {
      throw new Refused('malformed', `not JSON: ${(e as Error).message}`);
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) throw new Refused('malformed', 'expected a JSON object');
    if (depthOver(msg, MAX_DEPTH)) throw new Refused('too_deep', `nested deeper than ${MAX_DEPTH} levels`, idOf(msg));
    let body = msg as Record<string, unknown>;
    const envelope = typeof body.body === 'string' && typeof body.sig === 'string';
    if (r.hmacKey) {
      if (!envelope) throw new Refused('unsigned', `unsigned message: expected {"body": "<JSON text>", "sig": "<hex HMAC-SHA256>"}`, idOf(body));
      const text = body.body as string;
      const want = Buffer.from(sign(text, r.hmacKey), 'hex');
      const got = Buffer.from(String(body.sig), 'hex');
      let inner: Record<string, unknown> | undefined;
      try {
        inner = JSON.parse(text) as Record<string, unknown>;
      } catch {
        inner = undefined;
      }
      if (got.length !== want.length || !timingSafeEqual(got, want)) throw new Refused('bad_signature', 'the signature does not match the body', idOf(inner));
      if (!inner || typeof inner !== 'object') throw new Refused('malformed', 'the signed body is not a JSON object');
      if (depthOver(inner, MAX_DEPTH)) throw new Refused('too_deep', `nested deeper than ${MAX_DEPTH} levels`, idOf(inner));
      const ts = inner.ts;
      if (typeof ts !== 'number') throw new Refused('expired', 'the signed body has no ts (ms since the epoch)', idOf(inner));
      const skew = Math.abs(this.gw.now() - ts) / 1000;
      if (skew > r.maxSkewS) throw new Refused('expired', `ts is ${Math.round(skew)} s away from the gateway's clock (maxSkewS ${r.maxSkewS})`, idOf(inner));
      body = inner;
    } else if (envelope) {
      try {
        body = JSON.parse(body.body as string) as Record<string, unknown>;
      } catch (e) {
        throw new Refused('malformed', `the body is not JSON: ${(e as Error).message}`);
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Refused('malformed', 'the body is not a JSON object');
      if (depthOver(body, MAX_DEPTH)) throw new Refused('too_deep', `nested deeper than ${MAX_DEPTH} levels`, idOf(body));
    }
    const id = body.requestId;
    if (typeof id !== 'string' || !REQUEST_ID.test(id)) throw new Refused('malformed', 'requestId: expected 1..128 characters of letters, digits, _ . : -');
    if (!this.gw.store.replay.remember(id, this.gw.now(), Math.max(86_400_000, r.maxSkewS * 2000))) throw new Refused('replayed', `requestId ${id} was already used`, id);
    return body;
  }

  // ---------------------------------------------------------------- intake (SPEC §12: a flood cannot starve the box)

  private queue: { topic: string; payload: Buffer; config: boolean }[] = [];
  private tokens = Number.NaN;
  private refilled = 0;
  private draining = false;
  private flood: { count: number; requestIds: string[]; codes: Set<string>; timer?: NodeJS.Timeout } = { count: 0, requestIds: [], codes: new Set() };
  readonly counters = { received: 0, handled: 0, refusedBusy: 0, configBatches: 0 };

  /**
   * A message from the broker. Admitted to a bounded queue at `remote.maxPerS` (a burst of twice
   * that), else refused at once with a result; the queue is worked through one message at a time,
   * yielding to polling and rules between them, and config changes that queued up go live together.
   */
  receive(topic: string, payload: Buffer): void {
    const route = this.route(topic);
    if (!route) return;
    this.counters.received++;
    const r = this.gw.config.remote;
    const now = this.gw.clock.mono();
    const burst = r.maxPerS * 2;
    if (Number.isNaN(this.tokens)) this.tokens = burst;
    else this.tokens = Math.min(burst, this.tokens + (Math.max(0, now - this.refilled) / 1000) * r.maxPerS);
    this.refilled = now;
    if (this.tokens < 1 || this.queue.length >= r.maxQueue) {
      this.busy(topic, route, payload, this.tokens < 1 ? 'rate_limited' : 'queue_full');
      return;
    }
    this.tokens -= 1;
    this.queue.push({ topic, payload, config: route.kind === 'config' });
    void this.drain();
  }

  /** Messages still waiting. */
  get queued(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        if (this.queue[0]!.config) {
          let n = 0;
          while (n < this.queue.length && n < 100 && this.queue[n]!.config) n++;
          await this.handleConfigs(this.queue.splice(0, n));
        } else {
          const m = this.queue.shift()!;
          await this.handle(m.topic, m.payload);
        }
        // polling, rules and the page go first
        await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      this.gw.logger.error({ err: String(e) }, `remote: ${String(e)}`);
    } finally {
      this.draining = false;
    }
  }

  /** Refused before it was read: a result (with the request id, if one can be seen cheaply) and, once a second, one event for all. */
  private busy(topic: string, route: NonNullable<ReturnType<RemoteHandler['route']>>, payload: Buffer, code: 'rate_limited' | 'queue_full'): void {
    this.counters.refusedBusy++;
    const requestId = cheapRequestId(payload);
    const command = route.kind === 'config' ? 'config' : route.name;
    const r = this.gw.config.remote;
    const message = code === 'rate_limited' ? `more than ${r.maxPerS} remote messages a second (remote.maxPerS): send it again later` : `${r.maxQueue} remote messages are waiting (remote.maxQueue): send it again later`;
    this.answerRefusal(route.kind === 'config' ? TOPIC.configResult : TOPIC.cmdResult, command, requestId, { code, message });
    const f = this.flood;
    f.count++;
    f.codes.add(code);
    if (requestId && f.requestIds.length < 20) f.requestIds.push(requestId);
    f.timer ??= setTimeout(() => {
      const { count, requestIds, codes } = this.flood;
      this.flood = { count: 0, requestIds: [], codes: new Set() };
      this.gw.logger.warn({ count, codes: [...codes] }, `remote: ${count} messages refused in the last second (${[...codes].join(', ')})`);
      this.gw.record([{ type: 'remote_refused', ts: this.gw.now(), requestId: null, topic, command: 'many', code: [...codes][0]!, count, requestIds, reason: `${count} messages refused: ${message}` }]);
    }, 1000);
  }

  /** Check one message (size, JSON, signature, replay, allow list); refused ones are answered here. */
  private admit(topic: string, payload: Buffer): { route: NonNullable<ReturnType<RemoteHandler['route']>>; body: Record<string, unknown>; requestId: string; by?: string } | undefined {
    const route = this.route(topic);
    if (!route) return undefined;
    const command = route.kind === 'config' ? 'config' : route.name;
    const resultTopic = route.kind === 'config' ? TOPIC.configResult : TOPIC.cmdResult;
    let body: Record<string, unknown>;
    try {
      body = this.open(payload);
      if (route.kind === 'cmd' && !(COMMANDS as readonly string[]).includes(route.name))
        throw new Refused('unknown_command', `unknown command "${route.name}"; commands are ${COMMANDS.join(', ')}`, String(body.requestId));
      // `history` reads the config versions: it is allowed with `config`
      const permit = command === 'history' ? 'config' : command;
      if (!(this.gw.config.remote.allow as string[]).includes(permit))
        throw new Refused('not_allowed', `${permit} is not in remote.allow (${this.gw.config.remote.allow.join(', ')})`, String(body.requestId));
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      this.refused(topic, command, e.requestId, { code: e.code, message: e.message }, resultTopic);
      return undefined;
    }
    const by = typeof body.by === 'string' ? body.by.slice(0, 64) : undefined;
    return { route, body, requestId: String(body.requestId), by };
  }

  /** Config changes that queued up: checked one by one, live together (one version), each answered. */
  private async handleConfigs(batch: { topic: string; payload: Buffer }[]): Promise<void> {
    const ok = batch.map((m) => ({ m, a: this.admit(m.topic, m.payload) })).filter((x): x is { m: { topic: string; payload: Buffer }; a: NonNullable<ReturnType<RemoteHandler['admit']>> } => !!x.a);
    if (!ok.length) return;
    this.counters.configBatches++;
    this.counters.handled += ok.length;
    const results = await this.gw.applyConfigs(ok.map(({ a }) => ({ change: { patch: a.body.patch, config: a.body.config }, meta: { requestId: a.requestId, source: 'remote' as const } })));
    ok.forEach(({ m, a }, i) => {
      const res = results[i]!;
      const reason = res.ok ? undefined : res.errors?.map((x) => (x.path ? `${x.path}: ${x.message}` : x.message)).join('; ');
      const base = { ts: this.gw.now(), requestId: a.requestId, topic: m.topic, command: 'config', by: a.by, version: res.version };
      this.gw.record([res.ok ? { type: 'remote_accepted', ...base } : { type: 'remote_refused', ...base, code: res.rolledBack ? 'rolled_back' : 'invalid_config', reason: reason ?? '' }]);
      this.reply(TOPIC.configResult, JSON.stringify({ requestId: a.requestId, ok: res.ok, version: res.version, ...(res.errors ? { errors: res.errors } : {}), ...(res.rolledBack ? { rolledBack: true } : {}) }));
    });
  }

  /** One message, handled now (tests and the queue). */
  async handle(topic: string, payload: Buffer): Promise<void> {
    const route = this.route(topic);
    if (!route) return;
    if (route.kind === 'config') return this.handleConfigs([{ topic, payload }]);
    const a = this.admit(topic, payload);
    if (!a || a.route.kind !== 'cmd') return;
    this.counters.handled++;
    const { requestId, by, body } = a;
    const command = a.route.name;
    const out = await this.command(command, body, { requestId, by, topic });
    if (out.ok) this.gw.record([{ type: 'remote_accepted', ts: this.gw.now(), requestId, topic, command, by, scope: a.route.scope }]);
    else this.gw.record([{ type: 'remote_refused', ts: this.gw.now(), requestId, topic, command, by, scope: a.route.scope, code: out.error.code, reason: out.error.message }]);
    this.reply(TOPIC.cmdResult, JSON.stringify({ requestId, command, ...out }));
  }

  stop(): void {
    if (this.flood.timer) clearTimeout(this.flood.timer);
    this.queue = [];
  }

  private refused(topic: string, command: string, requestId: string | undefined, error: RemoteRefusal, resultTopic: ResultTopic): void {
    this.gw.logger.warn({ topic, command, requestId, code: error.code }, `remote ${command} refused: ${error.message}`);
    this.gw.record([{ type: 'remote_refused', ts: this.gw.now(), requestId: requestId ?? null, topic, command, code: error.code, reason: error.message }]);
    this.answerRefusal(resultTopic, command, requestId, error);
  }

  /** A refusal on the result topic: config results carry it as an error with an empty path. */
  private answerRefusal(resultTopic: ResultTopic, command: string, requestId: string | undefined, error: RemoteRefusal): void {
    if (resultTopic === TOPIC.configResult) this.reply(resultTopic, JSON.stringify({ requestId: requestId ?? null, ok: false, version: this.gw.version, errors: [{ path: '', message: `${error.code}: ${error.message}` }] }));
    else this.reply(resultTopic, JSON.stringify({ requestId: requestId ?? null, command, ok: false, error }));
  }

  private async command(
    name: string,
    body: Record<string, unknown>,
    meta: { requestId: string; by?: string; topic: string },
  ): Promise<{ ok: true; [k: string]: unknown } | { ok: false; error: RemoteRefusal }> {
    const fail = (code: string, message: string) => ({ ok: false as const, error: { code, message } });
    if (!(COMMANDS as readonly string[]).includes(name)) return fail('unknown_command', `unknown command "${name}"; commands are ${COMMANDS.join(', ')}`);
    switch (name as CommandName) {
      case 'ping':
        return { ok: true, gateway: this.gw.id, version: this.gw.version, alertLevel: this.gw.engine.alertLevel, uptimeS: Math.round((this.gw.now() - Date.parse(this.gw.startedAt)) / 1000) };
      case 'alert': {
        const level = body.level;
        if (typeof level !== 'string' || !(ALERT_LEVELS as readonly string[]).includes(level)) return fail('invalid_argument', `level: expected one of ${ALERT_LEVELS.join(' | ')}, got ${JSON.stringify(level)}`);
        this.gw.setAlertLevel(level as AlertLevel, { requestId: meta.requestId, by: meta.by, topic: meta.topic });
        return { ok: true, level };
      }
      case 'output': {
        const { output, state, durationS } = body;
        if (typeof output !== 'string') return fail('invalid_argument', 'output: expected an output name');
        if (state !== 'on' && state !== 'off') return fail('invalid_argument', `state: expected "on" or "off", got ${JSON.stringify(state)}`);
        if (durationS !== undefined && (typeof durationS !== 'number' || !(durationS > 0))) return fail('invalid_argument', 'durationS: expected a positive number of seconds');
        const r = this.gw.requestOutput(output, state === 'on', { durationS: durationS as number | undefined, by: `remote:${meta.by ?? meta.requestId}`, requestId: meta.requestId });
        if (!r.ok) return fail(r.code ?? 'refused', r.message ?? 'refused');
        return { ok: true, output, state };
      }
      case 'history':
        return {
          ok: true,
          version: this.gw.version,
          versions: this.gw.store.versions.history().map((v) => ({ version: v.version, ts: v.ts, source: v.source, requestId: v.requestId ?? null })),
        };
      case 'read': {
        const id = body.device;
        const dev = typeof id === 'string' ? this.gw.devices.get(id) : undefined;
        if (!dev) return fail('unknown_device', `device: expected one of ${[...this.gw.devices.keys()].join(', ')}, got ${JSON.stringify(id)}`);
        try {
          const values = await dev.read();
          return { ok: true, device: dev.id, values, flags: flagValues(values, this.gw.config.devices.find((d) => d.id === dev.id)?.ranges ?? {}) };
        } catch (e) {
          return fail('device_error', (e as Error).message);
        }
      }
      case 'republish': {
        const from = body.fromSeq;
        const to = body.toSeq;
        if (typeof from !== 'number' || typeof to !== 'number' || !Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to < from)
          return fail('invalid_argument', 'fromSeq, toSeq: expected integers with 1 ≤ fromSeq ≤ toSeq');
        const n = this.gw.republish(from, to);
        return { ok: true, fromSeq: from, toSeq: to, republished: n, note: 'records leave the buffer once acknowledged; only those still held are sent again' };
      }
    }
  }
}

/** Is a parsed JSON value nested deeper than `max`? (iterative: no recursion on hostile input) */
export function depthOver(v: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (d > max) return true;
    if (x && typeof x === 'object') for (const c of Object.values(x)) if (c && typeof c === 'object') stack.push([c, d + 1]);
  }
  return false;
}

/** The request id of a message without parsing it all (a flood's refusals): plain or inside a signed envelope's body. */
function cheapRequestId(payload: Buffer): string | undefined {
  const head = payload.subarray(0, 4096).toString('utf8');
  const m = /\\?"requestId\\?"\s*:\s*\\?"([\w.:-]{1,128})\\?"/.exec(head);
  return m?.[1];
}

function idOf(o: unknown): string | undefined {
  const id = o && typeof o === 'object' ? (o as Record<string, unknown>).requestId : undefined;
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
}
