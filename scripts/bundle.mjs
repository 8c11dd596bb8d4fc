// Bundles the CLI into one self-contained CommonJS file: the host runs it, and the stub image carries it.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

const outfile = 'dist/vmstub.cjs';
await build({
  entryPoints: ['src/cli/main.ts'],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile,
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
