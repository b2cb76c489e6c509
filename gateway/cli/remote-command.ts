/**
 * `dustgate remote …`: the operator's side of SPEC §8. Builds and signs requests, waits for each
 * answer, prints it readably, and exits 1 on a refusal or a time-out. Broker, TLS files and the
 * signing key come from flags or an operator file (`--operator FILE`, or $DUSTGATE_OPERATOR, or
 * ~/.config/dustgate/operator.yaml).
 */
import { TOPIC, topics, type PublishedEvent, type Topic } from '../contract.js';
import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UsageError, action } from './errors.js';
import { tr } from './lang.js';

const OperatorSchema = z.strictObject({
  broker: z.string().optional(),
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  hmacKey: z.string().optional(),
  prefix: z.string().optional(),
  by: z.string().optional(),
});
type Operator = z.infer<typeof OperatorSchema>;

interface CommonOpts {
  operator?: string;
  broker?: string;
  ca?: string;
  cert?: string;
  key?: string;
  username?: string;
  password?: string;
  hmacKey?: string;
  prefix?: string;
  by?: string;
  timeout: string;
}

function loadOperator(o: CommonOpts): Required<Pick<Operator, 'broker' | 'prefix' | 'by'>> & Operator {
  const file = o.operator ?? process.env.DUSTGATE_OPERATOR ?? path.join(os.homedir(), '.config/dustgate/operator.yaml');
  let fromFile: Operator = {};
  if (existsSync(file)) {
    const parsed = OperatorSchema.safeParse(parseYaml(readFileSync(file, 'utf8')) ?? {});
    if (!parsed.success) throw new UsageError(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.code === 'unrecognized_keys' ? `unknown key ${i.keys.join(', ')}` : i.message}`).join('; ')}`);
    fromFile = parsed.data;
  } else if (o.operator) throw new UsageError(tr('usage.noFile', { flag: '--operator', file: o.operator }));
  const pick = <K extends keyof Operator>(k: K) => ((o as unknown as Record<string, unknown>)[k] as Operator[K]) ?? fromFile[k];
  // file paths may start with ~/ (as people write them in an operator file)
  const home = (f: string | undefined) => (f?.startsWith('~/') ? path.join(os.homedir(), f.slice(2)) : f);
  return {
    broker: pick('broker') ?? 'mqtt://127.0.0.1:1883',
    ca: home(pick('ca')),
    cert: home(pick('cert')),
    key: home(pick('key')),
    username: pick('username'),
    password: pick('password'),
    hmacKey: pick('hmacKey'),
    prefix: pick('prefix') ?? 'dustgate',
    by: pick('by') ?? os.userInfo().username,
  };
}

function timeoutMs(o: CommonOpts): number {
  const s = Number(o.timeout);
  if (!(s > 0)) throw new UsageError(tr('usage.seconds', { got: o.timeout }));
  return s * 1000;
}

/** 10m, 90s, 1h, 600 → seconds. */
export function parseDuration(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(s.trim());
  if (!m) throw new UsageError(tr('usage.duration', { flag, got: s }));
  return Number(m[1]) * (m[2] === 'h' ? 3600 : m[2] === 'm' ? 60 : 1);
}

/** `a.b.c=value` pairs → a nested patch; values are YAML scalars (numbers, true/false, null, text). */
export function patchFromPairs(pairs: string[]): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new UsageError(tr('usage.pathValue', { got: p }));
    const keys = p.slice(0, eq).split('.');
    if (keys.some((k) => !/^[A-Za-z0-9_-]+$/.test(k))) throw new UsageError(tr('usage.dottedPath', { got: p.slice(0, eq) }));
    let value: unknown;
    try {
      value = parseYaml(p.slice(eq + 1));
    } catch {
      value = p.slice(eq + 1);
    }
    let node = patch;
    keys.slice(0, -1).forEach((k) => (node = (node[k] ??= {}) as Record<string, unknown>));
    node[keys[keys.length - 1]!] = value;
  }
  return patch;
}

async function connect(op: ReturnType<typeof loadOperator>) {
  const mqtt = (await import('mqtt')).default;
  const read = (f: string | undefined, what: string) => {
    if (!f) return undefined;
    try {
      return readFileSync(f);
    } catch (e) {
      throw new UsageError(tr('usage.cannotRead', { flag: what, file: f, why: String((e as NodeJS.ErrnoException).code ?? e) }));
    }
  };
  try {
    return await mqtt.connectAsync(op.broker, {
      clientId: `dustgate-operator-${randomBytes(4).toString('hex')}`,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      username: op.username,
      password: op.password,
      ca: read(op.ca, '--ca'),
      cert: read(op.cert, '--cert'),
      key: read(op.key, '--key'),
    });
  } catch (e) {
    const raw = (e as Error).message.replace(/\s+/g, ' ').trim();
    // OpenSSL says a lot; the part after "alert" is what matters (certificate required, unknown ca, …)
    const tls = /alert ([a-z ]+?):/i.exec(raw)?.[1];
    throw new UsageError(tr('usage.brokerConnect', { broker: op.broker, why: tls ? `TLS: "${tls}"` : raw }));
  }
}

interface Ctx {
  op: ReturnType<typeof loadOperator>;
  client: Awaited<ReturnType<typeof connect>>;
  wait: number;
}

async function session<T>(o: CommonOpts, fn: (c: Ctx) => Promise<T>): Promise<T> {
  const op = loadOperator(o);
  const wait = timeoutMs(o);
  const client = await connect(op);
  try {
    return await fn({ op, client, wait });
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

function newRequestId(by: string): string {
  return `${by.replace(/[^\w.:-]/g, '_').slice(0, 40)}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

async function envelope(op: Ctx['op'], request: Record<string, unknown>): Promise<string> {
  if (!op.hmacKey) return JSON.stringify(request);
  const { signedEnvelope } = await import('../remote.js');
  return signedEnvelope(request, op.hmacKey);
}

/** Publish a request and collect answers with its requestId on `resultTopic` (a wildcard for fleets). */
async function request(c: Ctx, topic: string, resultTopic: string, body: Record<string, unknown>, o: { expect?: number; collectMs?: number } = {}) {
  const requestId = newRequestId(c.op.by);
  const answers: { topic: string; payload: Record<string, unknown> }[] = [];
  c.client.on('message', (t, p) => {
    try {
      const payload = JSON.parse(p.toString()) as Record<string, unknown>;
      if (payload.requestId === requestId) answers.push({ topic: t, payload });
    } catch {
      /* not ours */
    }
  });
  await c.client.subscribeAsync(resultTopic, { qos: 1 });
  await c.client.publishAsync(topic, await envelope(c.op, { requestId, by: c.op.by, ...body }), { qos: 1 });
  const deadline = Date.now() + (o.collectMs ?? c.wait);
  while (Date.now() < deadline) {
    if (o.expect !== undefined && answers.length >= o.expect) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { requestId, answers };
}

const gatewayOf = (topic: string, prefix: string) => topic.slice(prefix.length + 1).split('/')[0];

function targetTopic(c: Ctx, o: { gateway?: string; group?: string; all?: boolean }, name: string): { topic: string; results: string; fleet: boolean } {
  const n = [o.gateway, o.group, o.all].filter(Boolean).length;
  if (n !== 1) throw new UsageError(tr('usage.whichGateways'));
  const P = c.op.prefix;
  if (o.gateway) return { topic: topics.cmd(P, o.gateway, name), results: topics.of(P, o.gateway, TOPIC.cmdResult), fleet: false };
  return { topic: o.group ? topics.cmdGroup(P, o.group, name) : topics.cmdAll(P, name), results: topics.of(P, '+', TOPIC.cmdResult), fleet: true };
}

/** Print answers; exit 1 when any is a refusal or none came. */
function report(c: Ctx, answers: { topic: string; payload: Record<string, unknown> }[], what: string, describe: (p: Record<string, unknown>) => string): void {
  if (!answers.length) {
    process.stderr.write(`dustgate: no answer to ${what} in ${c.wait / 1000} s — is the gateway online (dustgate remote watch) and subscribed to this broker?\n`);
    process.exit(1);
  }
  let bad = 0;
  for (const a of answers) {
    const gw = gatewayOf(a.topic, c.op.prefix);
    if (a.payload.ok) process.stdout.write(`${gw}: ok ${describe(a.payload)}\n`);
    else {
      bad++;
      const err = a.payload.error as { code?: string; message?: string } | undefined;
      const errors = a.payload.errors as { path: string; message: string }[] | undefined;
      if (errors) for (const e of errors) process.stderr.write(`${gw}: refused: ${e.path ? `${e.path}: ` : ''}${e.message}\n`);
      else process.stderr.write(`${gw}: refused: ${err?.code ?? 'error'}: ${err?.message ?? ''}\n`);
    }
  }
  if (bad) process.exit(1);
}

function common(cmd: Command): Command {
  return cmd
    .option('--operator <file>', 'operator file (YAML: broker, ca, cert, key, username, password, hmacKey, prefix, by)')
    .option('--broker <url>', 'broker URL (mqtt:// or mqtts://)')
    .option('--ca <file>', 'CA certificate of the broker (PEM)')
    .option('--cert <file>', 'client certificate (PEM)')
    .option('--key <file>', 'client key (PEM)')
    .option('--username <name>', 'broker user')
    .option('--password <secret>', 'broker password')
    .option('--hmac-key <key>', 'sign requests with this key (the gateways\' remote.hmacKey)')
    .option('--prefix <prefix>', 'topic prefix (mqtt.topicPrefix)')
    .option('--by <name>', 'who asks (recorded in the gateways\' events)')
    .option('--timeout <s>', 'seconds to wait for answers', '10');
}

export function registerRemoteCommand(program: Command): void {
  const remote = program.command('remote').description('operate gateways over MQTT: config, alert levels, outputs, a live tail');
  const config = remote.command('config').description('read or change a gateway\'s config');
  common(config.command('get').description('print the effective config (secrets redacted) and its version').requiredOption('--gateway <id>', 'gateway id')).action(
    action(async (o: CommonOpts & { gateway: string }) => {
      await session(o, async (c) => {
        const topic = `${c.op.prefix}/${o.gateway}/config`;
        let got: string | undefined;
        c.client.on('message', (t, p) => {
          if (t === topic) got = p.toString();
        });
        await c.client.subscribeAsync(topic, { qos: 1 });
        const deadline = Date.now() + c.wait;
        while (!got && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        if (!got) throw new UsageError(tr('usage.noRemoteConfig', { gateway: o.gateway, broker: c.op.broker, s: c.wait / 1000 }));
        process.stdout.write(`${JSON.stringify(JSON.parse(got), null, 2)}\n`);
      });
    }),
  );
  common(
    config
      .command('set')
      .description('change a gateway\'s config: PATH=VALUE pairs and/or a YAML patch file; prints the new version or every error')
      .requiredOption('--gateway <id>', 'gateway id')
      .option('--file <patch.yaml>', 'a YAML (or JSON) patch, merged key by key; null deletes a key')
      .argument('[pairs...]', 'PATH=VALUE, e.g. rules.dustAlarm.pm10.warn=120'),
  ).action(
    action(async (pairs: string[], o: CommonOpts & { gateway: string; file?: string }) => {
      let patch: Record<string, unknown> = {};
      if (o.file) {
        if (!existsSync(o.file)) throw new UsageError(tr('usage.noFile', { flag: '--file', file: o.file }));
        const parsed = parseYaml(readFileSync(o.file, 'utf8'));
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(tr('usage.notMapping', { file: o.file }));
        patch = parsed as Record<string, unknown>;
      }
      const { deepMerge } = await import('../config/load.js');
      patch = deepMerge(patch, patchFromPairs(pairs));
      if (!Object.keys(patch).length) throw new UsageError(tr('usage.nothingToChange'));
      await session(o, async (c) => {
        const at = (t: Topic) => topics.of(c.op.prefix, o.gateway, t);
        const { answers } = await request(c, at(TOPIC.configSet), at(TOPIC.configResult), { patch }, { expect: 1 });
        report(c, answers, 'config set', (p) => `applied, version ${p.version}`);
      });
    }),
  );
  common(config.command('history').description('list a gateway\'s last config versions').requiredOption('--gateway <id>', 'gateway id')).action(
    action(async (o: CommonOpts & { gateway: string }) => {
      await session(o, async (c) => {
        const { answers } = await request(c, topics.cmd(c.op.prefix, o.gateway, 'history'), topics.of(c.op.prefix, o.gateway, TOPIC.cmdResult), {}, { expect: 1 });
        report(c, answers, 'config history', (p) =>
          [`current version ${p.version}`, ...(p.versions as { version: number; ts: string; source: string; requestId: string | null }[]).map((v) => `  ${String(v.version).padEnd(6)} ${v.ts}  ${v.source.padEnd(8)} ${v.requestId ?? '-'}`)].join('\n'),
        );
      });
    }),
  );
  common(
    remote
      .command('alert')
      .description('set the pollution alert level (none|blue|yellow|orange|red) of one gateway, a city\'s gateways or all')
      .argument('<level>', 'none | blue | yellow | orange | red')
      .option('--gateway <id>', 'one gateway')
      .option('--group <city>', 'every gateway of a group (mqtt.group)')
      .option('--all', 'every gateway'),
  ).action(
    action(async (level: string, o: CommonOpts & { gateway?: string; group?: string; all?: boolean }) => {
      if (!['none', 'blue', 'yellow', 'orange', 'red'].includes(level)) throw new UsageError(tr('usage.level', { got: level }));
      await session(o, async (c) => {
        const t = targetTopic(c, o, 'alert');
        // a fleet answers gateway by gateway: collect for the whole --timeout (or 3 s, whichever is shorter)
        const { answers } = await request(c, t.topic, t.results, { level }, t.fleet ? { collectMs: Math.min(c.wait, 3000) } : { expect: 1 });
        report(c, answers, `alert ${level}`, (p) => `alert level ${p.level}`);
      });
    }),
  );
  common(
    remote
      .command('output')
      .description('switch an output by hand; every interlock still applies (frost, maxOnS, minOffS)')
      .argument('<name>', 'output name (sprinkler, cameraTrigger, …)')
      .argument('<state>', 'on | off')
      .option('--for <duration>', 'switch off again after this long (90s, 10m, 1h); capped by maxOnS')
      .requiredOption('--gateway <id>', 'gateway id'),
  ).action(
    action(async (name: string, state: string, o: CommonOpts & { gateway: string; for?: string }) => {
      if (state !== 'on' && state !== 'off') throw new UsageError(tr('usage.state', { got: state }));
      const durationS = o.for ? parseDuration(o.for, '--for') : undefined;
      await session(o, async (c) => {
        const { answers } = await request(c, topics.cmd(c.op.prefix, o.gateway, 'output'), topics.of(c.op.prefix, o.gateway, TOPIC.cmdResult), { output: name, state, ...(durationS ? { durationS } : {}) }, { expect: 1 });
        report(c, answers, `output ${name} ${state}`, (p) => `${p.output} ${p.state}${durationS ? ` for ${durationS} s` : ''}`);
      });
    }),
  );
  common(
    remote
      .command('watch')
      .description('a live, readable tail of events, states and results across the fleet (Ctrl-C to stop)')
      .option('--gateway <id>', 'one gateway')
      .option('--group <city>', 'the gateways of a group')
      .option('--json', 'print the raw messages as JSON lines'),
  ).action(
    action(async (o: CommonOpts & { gateway?: string; group?: string; json?: boolean }) => {
      const op = loadOperator(o);
      const client = await connect(op);
      const P = op.prefix;
      const who = o.gateway ?? '+';
      const groups = new Map<string, string>();
      client.on('message', (topic, payload) => {
        let m: Record<string, unknown>;
        try {
          m = JSON.parse(payload.toString()) as Record<string, unknown>;
        } catch {
          return;
        }
        const gw = gatewayOf(topic, P) ?? '?';
        const kind = topic.slice(P.length + gw.length + 2);
        if (kind === TOPIC.config) {
          groups.set(gw, String((m.mqtt as { group?: string } | undefined)?.group ?? ''));
          return;
        }
        if (o.group && groups.get(gw) !== o.group) return;
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ topic, ...m })}\n`);
          return;
        }
        for (const line of describeMessage(kind, m)) process.stdout.write(`${line.ts.slice(11, 19)} ${gw.padEnd(20)} ${line.text}\n`);
      });
      await client.subscribeAsync(WATCHED.map((t) => topics.of(P, who, t)), { qos: 1 });
      process.stderr.write(`watching ${o.gateway ? `gateway ${o.gateway}` : o.group ? `group ${o.group}` : 'every gateway'} on ${op.broker} (Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
      await client.endAsync(true);
    }),
  );
}

/** One readable line per event, state, status or result. */
/** What `dustgate remote watch` shows. */
const WATCHED: Topic[] = [TOPIC.events, TOPIC.state, TOPIC.status, TOPIC.cmdResult, TOPIC.configResult, TOPIC.config];

export function describeMessage(kind: string, m: Record<string, unknown>): { ts: string; text: string }[] {
  const now = new Date().toISOString();
  if (kind === TOPIC.events)
    return ((m.events as PublishedEvent[]) ?? []).map((e) => {
      const { seq, ts, type, ...rest } = e;
      const detail = Object.entries(rest)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
        .join(' ');
      return { ts: String(ts ?? now), text: `event #${seq} ${type} ${detail}` };
    });
  if (kind === TOPIC.state) {
    const s = m as { ts?: string; sprinkling?: { allowed: boolean; reason: string | null; on: boolean }; sweeping?: { allowed: boolean; beaufort: number | null }; alarms?: Record<string, string>; alertLevel?: string; devices?: Record<string, string> };
    const alarms = Object.entries(s.alarms ?? {})
      .filter(([, v]) => v !== 'none')
      .map(([k, v]) => `${k}:${v}`)
      .join(',');
    const offline = Object.entries(s.devices ?? {})
      .filter(([, v]) => v !== 'online')
      .map(([k, v]) => `${k}:${v}`)
      .join(',');
    return [
      {
        ts: s.ts ?? now,
        text: `state sprinkling ${s.sprinkling?.allowed ? 'allowed' : `blocked (${s.sprinkling?.reason})`}${s.sprinkling?.on ? ' ON' : ''}, sweeping ${s.sweeping?.allowed ? 'allowed' : 'stopped'} (Beaufort ${s.sweeping?.beaufort ?? '-'}), alarms ${alarms || 'none'}, alert ${s.alertLevel}${offline ? `, devices ${offline}` : ''}`,
      },
    ];
  }
  if (kind === TOPIC.status) return [{ ts: String(m.startedAt ?? now), text: `status ${m.state} (version ${m.version})` }];
  if (kind === TOPIC.cmdResult || kind === TOPIC.configResult) {
    const err = m.error as { code?: string; message?: string } | undefined;
    const errors = m.errors as { path: string; message: string }[] | undefined;
    const why = err ? `${err.code}: ${err.message}` : errors ? errors.map((e) => `${e.path}: ${e.message}`).join('; ') : '';
    return [{ ts: now, text: `${kind} ${m.command ?? 'config'} ${m.requestId} ${m.ok ? 'ok' : `refused ${why}`}` }];
  }
  return [];
}
