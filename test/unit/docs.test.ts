/**
 * The docs stay right for the code: every file path the README and docs/ name exists, every link
 * between them resolves, and the README stays what a newcomer needs (under 12 KB, both command lines).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/gateway-rig.js';

/** Files the pages name that a run writes (not in a clone). */
const WRITTEN = new Set(['bench/results.json']);

const pages = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

describe('docs', () => {
  it('the README is under 12 KB and keeps the two command lines', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(statSync(path.join(ROOT, 'README.md')).size).toBeLessThan(12 * 1024);
    expect(readme).toContain('npm install && npm start');
    expect(readme).toContain('bash scripts/install-system-deps.sh && npm ci && npm test');
  });

  it('every file a page names exists, and every link resolves', () => {
    const missing: string[] = [];
    let named = 0;
    for (const page of pages) {
      const text = readFileSync(path.join(ROOT, page), 'utf8');
      for (const m of text.matchAll(/`((?:drivers|gateway|simulator|seeds|test|bench|scripts|docs)\/[\w./-]+\.(?:ts|mjs|yaml|md|sh|json|py))`/g)) {
        named++;
        if (!WRITTEN.has(m[1]!) && !existsSync(path.join(ROOT, m[1]!))) missing.push(`${page}: ${m[1]}`);
      }
      for (const m of text.matchAll(/\]\(([\w./-]+\.md)(?:#[\w-]+)?\)/g)) {
        if (!existsSync(path.join(ROOT, path.dirname(page), m[1]!))) missing.push(`${page}: link ${m[1]}`);
      }
    }
    expect(named).toBeGreaterThan(60);
    expect(missing).toEqual([]);
  });

  it('docs/architecture.md names the files of every kind of addition', () => {
    const arch = readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8');
    for (const kind of ['A driver', 'A metric', 'A rule', 'An uplink', 'A CLI command']) expect(arch).toContain(`### ${kind}`);
  });
});
