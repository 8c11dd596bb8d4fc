/**
 * rpm's own test cases, run through vmstub's version comparison and range matching: rpmvercmp.at,
 * rpmdepmatch.at (rpm's repository) and 4,489 pairs made by rpm's labelCompare (test/fixtures/real/).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { rangesOverlap } from '../../src/bootstrap/rpm/deps.js';
import type { Dep, DepFlag } from '../../src/bootstrap/rpm/metadata.js';
import { rpmvercmp } from '../../src/util/version.js';
import { VMSTUB } from '../helpers/cli.js';

const DIR = resolve(VMSTUB, '..', '..', 'test', 'fixtures', 'real', 'rpm-tests');
const read = (f: string) => readFileSync(join(DIR, f), 'utf8');

test("rpm's rpmvercmp.at: every active case", () => {
  const cases = [...read('rpmvercmp.at').matchAll(/^RPMVERCMP\(([^,]*), ([^,]*), (-?\d)\)$/gm)];
  assert.equal(cases.length, 91, 'the active cases (the dnl ones are disabled in rpm too)');
  const wrong = cases
    .map(([, a, b, want]) => ({ a: a!, b: b!, want: Number(want), got: rpmvercmp(a!, b!) }))
    .filter((c) => Math.sign(c.got) !== c.want);
  assert.deepEqual(wrong, []);
});

test("rpm's labelCompare on 4,489 version pairs", () => {
  const pairs = JSON.parse(read('cavaliergopher-vercmp.json')) as { a: string; b: string; expect: number }[];
  assert.equal(pairs.length, 4489);
  const wrong = pairs.filter((p) => Math.sign(rpmvercmp(p.a, p.b)) !== p.expect);
  assert.deepEqual(wrong, []);
});

const FLAGS: Record<string, DepFlag> = { '=': 'EQ', '<': 'LT', '<=': 'LE', '>': 'GT', '>=': 'GE' };

/** ('a', '>=', '1:1.2-3') as rpm.ds reads it. */
function dep(name: string, op?: string, evr?: string, flags?: DepFlag): Dep {
  if (!op || !evr) return { name };
  const m = /^(?:(\d+):)?([^-]*)(?:-(.*))?$/.exec(evr)!;
  return { name, flags: flags ?? FLAGS[op]!, epoch: m[1], ver: m[2], rel: m[3] };
}

/** rpm's ds.Compare: the names match and the ranges overlap. '<>' is the union of '<' and '>'. */
function matches(p: string[], r: string[]): boolean {
  if (p[0] !== r[0]) return false;
  const side = (d: string[]): Dep[] =>
    d[1] === '<>' ? [dep(d[0]!, '<', d[2]), dep(d[0]!, '>', d[2])] : [dep(d[0]!, d[1], d[2])];
  return side(p).some((a) => side(r).some((b) => rangesOverlap(a, b)));
}

test("rpm's rpmdepmatch.at: all 182 provide/require pairs", () => {
  const tuple = (t: string) => [...t.matchAll(/'([^']*)'/g)].map((m) => m[1]!);
  const cases = [...read('rpmdepmatch.at').matchAll(/^\s*\(\(([^)]*)\),\s*\(([^)]*)\),\s*([01])\),/gm)].map(
    ([, p, r, want]) => ({ p: tuple(p!), r: tuple(r!), want: want === '1' }),
  );
  assert.equal(cases.length, 182);
  const wrong = cases
    .filter((c) => matches(c.p, c.r) !== c.want)
    .map((c) => `${c.p.join(' ')} vs ${c.r.join(' ')}: rpm says ${c.want}`);
  assert.deepEqual(wrong, []);
});
