/**
 * The MQTT contract (gateway/contract.ts): the topic names are SPEC §8's, and every event a
 * producer records is one of the contract's types (the union is checked when compiling; this
 * checks the producers' literals against the run-time list, so a new event cannot skip the contract).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { EVENT_TYPES, TOPIC, WARN_EVENTS, topics } from '../../gateway/contract.js';
import { ROOT } from '../helpers/gateway-rig.js';

describe('MQTT contract', () => {
  it('topics are SPEC §8 names under <prefix>/<gateway>', () => {
    expect(topics.of('dustgate', 'site-1', TOPIC.telemetry)).toBe('dustgate/site-1/telemetry');
    expect(topics.of('dustgate', 'site-1', TOPIC.configSet)).toBe('dustgate/site-1/config/set');
    expect(topics.of('dustgate', 'site-1', TOPIC.cmdResult)).toBe('dustgate/site-1/cmd/result');
    expect(topics.cmd('dustgate', 'site-1', 'output')).toBe('dustgate/site-1/cmd/output');
    expect(topics.cmdAll('dustgate', '+')).toBe('dustgate/_all/cmd/+');
    expect(topics.cmdGroup('city/zz', 'zhengzhou', 'ping')).toBe('city/zz/_group/zhengzhou/cmd/ping');
    expect(Object.values(TOPIC).sort()).toEqual(['aggregates', 'cmd/result', 'config', 'config/result', 'config/set', 'events', 'state', 'status', 'telemetry']);
  });

  it('every event type a producer writes is in the contract, and every contract type has a producer', () => {
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = path.join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && !p.endsWith('contract.ts')) files.push(p);
      }
    };
    walk(path.join(ROOT, 'gateway'));
    const produced = new Set<string>();
    for (const f of files) {
      const src = readFileSync(f, 'utf8');
      // event literals: `type: 'x_y'` next to a ts (how every producer builds one)
      for (const m of src.matchAll(/\{\s*type:\s*(?:[^,{}]*\?\s*)?'([a-z]+_[a-z_]+)'(?:\s*:\s*'([a-z]+_[a-z_]+)')?\s*,\s*(?:ts|\.\.\.)/g)) {
        produced.add(m[1]!);
        if (m[2]) produced.add(m[2]);
      }
    }
    const known = new Set<string>(EVENT_TYPES);
    expect([...produced].filter((t) => !known.has(t))).toEqual([]);
    expect(EVENT_TYPES.filter((t) => !produced.has(t))).toEqual([]);
    for (const t of WARN_EVENTS) expect(known.has(t)).toBe(true);
  });
});
