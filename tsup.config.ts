import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { cli: 'gateway/cli/main.ts' },
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  outDir: 'dist',
  clean: true,
  sourcemap: true,
  // a small young generation keeps the resident size of a long-running gateway low (Pi-class boxes)
  banner: { js: '#!/usr/bin/env -S node --max-semi-space-size=4' },
});
