/**
 * The shape of the code (issue "One shape for the gateway"): no import cycles in gateway/, drivers/
 * and simulator/ (type-only imports count: a cycle of types is a cycle of ideas), and the rules
 * never reach into the config (config/ depends on rules/, not the other way round); files stay a size
 * one can read (gateway.ts ≤ 400 lines, the rest of gateway/ ≤ 450).
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/gateway-rig.js';

function sources(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) out.push(p);
    }
  };
  for (const d of ['gateway', 'drivers', 'simulator']) walk(path.join(ROOT, d));
  return out;
}

/** file → the files of ours it imports (static, dynamic and type-only imports). */
function importGraph(): Map<string, string[]> {
  const files = sources();
  const known = new Set(files);
  const g = new Map<string, string[]>();
  for (const f of files) {
    const src = readFileSync(f, 'utf8');
    const deps = [...src.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => path.resolve(path.dirname(f), m[1]!).replace(/\.js$/, '.ts'));
    g.set(f, [...new Set(deps.filter((d) => known.has(d)))]);
  }
  return g;
}

function cycles(g: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 1) found.push([...stack.slice(stack.indexOf(d)), d].map((x) => path.relative(ROOT, x)).join(' → '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of g.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('imports', () => {
  it('the checker finds a cycle when there is one', () => {
    const g = new Map([
      ['/a.ts', ['/b.ts']],
      ['/b.ts', ['/c.ts']],
      ['/c.ts', ['/a.ts']],
    ]);
    expect(cycles(g)).toHaveLength(1);
  });

  it('no import cycles in gateway/, drivers/, simulator/', () => {
    const g = importGraph();
    expect(g.size).toBeGreaterThan(50);
    expect(cycles(g)).toEqual([]);
  });

  it('nothing under gateway/rules/ imports gateway/config/', () => {
    const g = importGraph();
    const bad = [...g].filter(([f, deps]) => f.includes(`${path.sep}gateway${path.sep}rules${path.sep}`) && deps.some((d) => d.includes(`${path.sep}gateway${path.sep}config${path.sep}`)));
    expect(bad.map(([f]) => path.relative(ROOT, f))).toEqual([]);
  });

  it('gateway/gateway.ts stays at most 400 lines and no file under gateway/ passes 450', () => {
    const lines = (f: string) => readFileSync(f, 'utf8').split('\n').length - (readFileSync(f, 'utf8').endsWith('\n') ? 1 : 0);
    const gw = sources().filter((f) => f.startsWith(path.join(ROOT, 'gateway') + path.sep));
    expect(gw.length).toBeGreaterThan(40);
    expect(lines(path.join(ROOT, 'gateway/gateway.ts'))).toBeLessThanOrEqual(400);
    expect(gw.filter((f) => lines(f) > 450).map((f) => `${path.relative(ROOT, f)}: ${lines(f)} lines`)).toEqual([]);
  });

  it('the metric catalog, the contract and the record buffer are leaves (they import nothing of ours)', () => {
    const g = importGraph();
    for (const f of ['gateway/metrics.ts', 'gateway/contract.ts', 'gateway/record-buffer.ts']) expect(g.get(path.join(ROOT, f)), f).toEqual([]);
  });
});
