/** vmstub's rpmvercmp against rpm's own, on a generated corpus of version pairs. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { rpmEvrCompare, rpmvercmp } from '../../src/util/version.js';

/** A small deterministic generator, so a failure can be reproduced. */
function generator(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}

function corpus(n: number, withEvr: boolean): [string, string][] {
  const rnd = generator(withEvr ? 20261122 : 7);
  const pieces = [
    '0',
    '1',
    '2',
    '9',
    '10',
    '01',
    '007',
    'a',
    'b',
    'rc',
    'el9',
    'fc42',
    'git',
    '.',
    '.',
    '_',
    '+',
    '~',
    '^',
    'x86_64',
    ...(withEvr ? ['-', '-', ':', '1:'] : []),
  ];
  const version = () =>
    Array.from({ length: 1 + Math.floor(rnd() * 7) }, () => pieces[Math.floor(rnd() * pieces.length)]).join(
      '',
    );
  const pairs: [string, string][] = [];
  for (let i = 0; i < n; i++) {
    const a = version();
    // half the pairs share a prefix, which is where the interesting cases are
    const b = rnd() < 0.5 ? a.slice(0, Math.floor(rnd() * a.length)) + version() : version();
    pairs.push([a, b]);
  }
  return pairs;
}

/** rpm's own answers, from its Lua rpm.vercmp (which compares whole [epoch:]version[-release] strings). */
function rpmAnswers(pairs: [string, string][]): number[] {
  const dir = mkdtempSync(join(tmpdir(), 'vercmp-'));
  const script = join(dir, 'cmp.lua');
  const quoted = (s: string) => `"${s}"`;
  // rpm's Lua print() adds no separator between calls
  writeFileSync(
    script,
    pairs.map(([a, b]) => `print(tostring(rpm.vercmp(${quoted(a)}, ${quoted(b)})) .. " ")`).join('\n'),
  );
  const out = execFileSync('rpm', ['--eval', `%{lua: dofile("${script}")}`], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  return out.trim().split(/\s+/).map(Number);
}

for (const [what, withEvr, compare] of [
  ['rpmvercmp (versions without epoch or release)', false, rpmvercmp],
  ['EVR comparison ([epoch:]version[-release])', true, rpmEvrCompare],
] as const) {
  test(`${what} agrees with rpm on 3000 generated pairs`, () => {
    const pairs = corpus(3000, withEvr);
    const theirs = rpmAnswers(pairs);
    assert.equal(theirs.length, pairs.length);
    const disagreements = pairs
      .map(([a, b], i) => ({ a, b, rpm: theirs[i], ours: compare(a, b) }))
      .filter((d) => d.rpm !== d.ours);
    assert.deepEqual(disagreements.slice(0, 10), []);
  });
}
