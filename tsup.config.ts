import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { cli: 'gateway/cli/main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  clean: true,
  sourcemap: true,
  banner: { js: '#!/usr/bin/env node' },
});
