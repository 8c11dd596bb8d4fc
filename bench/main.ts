/**
 * `npm run bench [-- NAME...]`: runs the benchmarks and prints Markdown for docs/benchmarks.md.
 * Each benchmark measures vmstub next to what a user would otherwise run, in the same run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineLine, toMarkdown, type BenchResult } from './report.js';
import { benchCreate } from './create.js';
import { benchDisks } from './disks.js';
import { benchFamilies } from './families.js';
import { benchForeign } from './foreign.js';
import { benchHandoff } from './handoff.js';
import { benchImage } from './image.js';
import { benchPackageCache } from './package-cache.js';
import { benchRpmSolve } from './rpm-solve.js';
import { benchRunner } from './runner.js';
import { benchStub } from './stub.js';

const benchmarks: Record<string, () => Promise<BenchResult>> = {
  runner: benchRunner,
  stub: benchStub,
  handoff: benchHandoff,
  create: benchCreate,
  families: benchFamilies,
  disks: benchDisks,
  'package-cache': benchPackageCache,
  image: benchImage,
  'rpm-solve': benchRpmSolve,
  foreign: benchForeign,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in benchmarks));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(benchmarks).join(', ')}`);
  process.exit(2);
}
const out: string[] = [`Measured ${new Date().toISOString().slice(0, 10)} on ${machineLine()}.`, ''];
let failed = 0;
for (const name of wanted.length ? wanted : Object.keys(benchmarks)) {
  process.stderr.write(`bench: ${name}...\n`);
  let result: BenchResult;
  try {
    result = await benchmarks[name]!();
  } catch (e) {
    // One benchmark that fails does not end the run: the others still measure, and the run exits 1.
    failed++;
    process.stderr.write(`bench: ${name} FAILED: ${(e as Error).message}\n`);
    out.push(`### ${name}\n\nFAILED: ${(e as Error).message}\n`);
    continue;
  }
  out.push(toMarkdown(result));
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    join('bench/results', `${name}.json`),
    JSON.stringify({ at: new Date().toISOString(), machine: machineLine(), ...result }, null, 2) + '\n',
  );
}
process.stdout.write(out.join('\n'));
if (failed) process.exitCode = 1;
