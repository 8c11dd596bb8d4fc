// Runs the test tiers named on the command line with node's test runner, in order.
// Unit tests run in parallel; integration and e2e tests share one CPU-bound QEMU budget and run one file at a time.
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const tiers = process.argv.slice(2);
let failed = false;
for (const tier of tiers) {
  const dir = join('dist', 'test', tier);
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.test.js'))
        .sort()
        .map((f) => join(dir, f))
    : [];
  if (files.length === 0) {
    console.error(`run-tests: no ${tier} tests found in ${dir}`);
    failed = true;
    continue;
  }
  console.log(`\n=== ${tier} tests (${files.length} files) ===`);
  const concurrency = tier === 'unit' ? '2' : '1';
  const r = spawnSync(
    process.execPath,
    ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
    { stdio: 'inherit' },
  );
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
