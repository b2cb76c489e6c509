/**
 * Remote operations (SPEC §8 inbound, §12): `P/config/set` and `P/cmd/<name>`, also for the
 * gateway's group and for all gateways. Every message is checked (size, JSON, signature and time
 * window when `remote.hmacKey` is set, a request id never seen before, the allow list) before it
 * can change anything; every accepted or refused one is an event with its request id and topic,
 * and is answered on `P/config/result` or `P/cmd/result`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ALERT_LEVELS, type AlertLevel } from './config/schema.js';
import type { Gateway } from './gateway.js';
import { flagValues } from './reading.js';

export const MAX_PAYLOAD = 1024 * 1024;
const REQUEST_ID = /^[\w.:-]{1,128}$/;
const COMMANDS = ['output', 'alert', 'read', 'republish', 'ping', 'history'] as const;
type CommandName = (typeof COMMANDS)[number];

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
  constructor(private readonly gw: Gateway) {}

  private get prefix(): string {
    return this.gw.config.mqtt.topicPrefix;
  }

  /** Topics to subscribe to. */
  topics(): string[] {
    const c = this.gw.config;
    const P = `${c.mqtt.topicPrefix}/${c.gateway.id}`;
    const t = [`${P}/config/set`, `${P}/cmd/+`, `${c.mqtt.topicPrefix}/_all/cmd/+`];
    if (c.mqtt.group) t.push(`${c.mqtt.topicPrefix}/_group/${c.mqtt.group}/cmd/+`);
    return t;
  }

  /** What a topic asks for, or undefined if it is not ours. */
  private route(topic: string): { kind: 'config' } | { kind: 'cmd'; name: string; scope: 'gateway' | 'group' | 'all' } | undefined {
    const c = this.gw.config;
    const P = `${this.prefix}/${c.gateway.id}`;
    if (topic === `${P}/config/set`) return { kind: 'config' };
    const tail = (base: string) => (topic.startsWith(`${base}/cmd/`) ? topic.slice(base.length + 5) : undefined);
    let name = tail(P);
    if (name === 'result') return undefined; // our own answers (P/cmd/+ matches them too)
    if (name !== undefined) return { kind: 'cmd', name, scope: 'gateway' };
    name = tail(`${this.prefix}/_all`);
    if (name !== undefined) return { kind: 'cmd', name, scope: 'all' };
    if (c.mqtt.group) {
      name = tail(`${this.prefix}/_group/${c.mqtt.group}`);
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
    }
    const id = body.requestId;
    if (typeof id !== 'string' || !REQUEST_ID.test(id)) throw new Refused('malformed', 'requestId: expected 1..128 characters of letters, digits, _ . : -');
    if (!this.gw.store.rememberRequest(id, this.gw.now(), Math.max(86_400_000, r.maxSkewS * 2000))) throw new Refused('replayed', `requestId ${id} was already used`, id);
    return body;
  }

  async handle(topic: string, payload: Buffer): Promise<void> {
    const route = this.route(topic);
    if (!route) return;
    const command = route.kind === 'config' ? 'config' : route.name;
    const resultTopic = route.kind === 'config' ? 'config/result' : 'cmd/result';
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
      return;
    }
    const requestId = String(body.requestId);
    const by = typeof body.by === 'string' ? body.by.slice(0, 64) : undefined;
    if (route.kind === 'config') {
      const res = await this.gw.applyConfig({ patch: body.patch, config: body.config }, { requestId, source: 'remote' });
      const reason = res.ok ? undefined : res.errors?.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
      this.gw.record([
        {
          type: res.ok ? 'remote_accepted' : 'remote_refused',
          ts: this.gw.now(),
          requestId,
          topic,
          command,
          by,
          version: res.version,
          ...(res.ok ? {} : { code: res.rolledBack ? 'rolled_back' : 'invalid_config', reason }),
        },
      ]);
      this.gw.uplink?.publish('config/result', JSON.stringify({ requestId, ok: res.ok, version: res.version, ...(res.errors ? { errors: res.errors } : {}), ...(res.rolledBack ? { rolledBack: true } : {}) }));
      return;
    }
    const out = await this.command(route.name, body, { requestId, by, topic });
    if (out.ok) this.gw.record([{ type: 'remote_accepted', ts: this.gw.now(), requestId, topic, command, by, scope: route.scope }]);
    else this.gw.record([{ type: 'remote_refused', ts: this.gw.now(), requestId, topic, command, by, scope: route.scope, code: out.error.code, reason: out.error.message }]);
    this.gw.uplink?.publish('cmd/result', JSON.stringify({ requestId, command, ...out }));
  }

  private refused(topic: string, command: string, requestId: string | undefined, error: RemoteRefusal, resultTopic: string): void {
    this.gw.logger.warn({ topic, command, requestId, code: error.code }, `remote ${command} refused: ${error.message}`);
    this.gw.record([{ type: 'remote_refused', ts: this.gw.now(), requestId: requestId ?? null, topic, command, code: error.code, reason: error.message }]);
    if (resultTopic === 'config/result') this.gw.uplink?.publish(resultTopic, JSON.stringify({ requestId: requestId ?? null, ok: false, version: this.gw.version, errors: [{ path: '', message: `${error.code}: ${error.message}` }] }));
    else this.gw.uplink?.publish(resultTopic, JSON.stringify({ requestId: requestId ?? null, command, ok: false, error }));
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
          versions: this.gw.store.configHistory().map((v) => ({ version: v.version, ts: v.ts, source: v.source, requestId: v.requestId ?? null })),
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
        const n = this.gw.uplink?.republish(from, to) ?? 0;
        return { ok: true, fromSeq: from, toSeq: to, republished: n, note: 'records leave the buffer once acknowledged; only those still held are sent again' };
      }
    }
  }
}

function idOf(o: unknown): string | undefined {
  const id = o && typeof o === 'object' ? (o as Record<string, unknown>).requestId : undefined;
  return typeof id === 'string' && REQUEST_ID.test(id) ? id : undefined;
}
