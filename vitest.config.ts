import { defineConfig } from 'vitest/config';

/**
 * Tests that measure how the gateway keeps its cadence under load run after the rest, one at a
 * time: a neighbouring test (a browser, a mosquitto restart) on a 2-core box would be measured too.
 */
const ALONE = ['test/e2e/safety-flood.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    // the CLI speaks the language of LC_ALL / LC_MESSAGES / LANG: tests run in English unless they set one
    env: { LANG: 'C.UTF-8', LC_ALL: '', LC_MESSAGES: '' },
    hookTimeout: 30_000,
    // one temporary directory for the whole run, removed at its end (test/helpers/tmp-setup.ts)
    globalSetup: ['test/helpers/tmp-setup.ts'],
    // Tests share loopback ports, ptys and child processes; two workers fit a 2-core CI box.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'shared', include: ['test/**/*.test.ts'], exclude: ALONE, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'alone', include: ALONE, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
