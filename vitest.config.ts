import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests share loopback ports, ptys and child processes; two workers fit a 2-core CI box.
    pool: 'forks',
    maxWorkers: 2,
  },
});
