/**
 * The RPM metadata reader and the rich dependency parser on what a distribution really publishes:
 * CentOS Stream 9 AppStream's primary.xml (test/fixtures/real/README.md says where it comes from).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isRich, parseRich, type RichDep } from '../../src/bootstrap/rpm/deps.js';
import { PrimaryReader } from '../../src/bootstrap/rpm/metadata.js';
import { decodeEntities } from '../../src/bootstrap/rpm/xml.js';
import { VMSTUB } from '../helpers/cli.js';

const REPODATA = resolve(VMSTUB, '..', '..', 'test', 'fixtures', 'real', 'cs9-appstream', 'repodata');
const primaryXml = (): string => {
  const file = readdirSync(REPODATA).find((f) => f.endsWith('-primary.xml.gz'))!;
  return gunzipSync(readFileSync(join(REPODATA, file))).toString('utf8');
};
const xml = primaryXml();

/** The names in a rich dependency's tree, in order. */
function names(d: RichDep): string[] {
  if (d.kind === 'simple') return [d.dep.name];
  return [...d.args.flatMap(names), ...(d.otherwise ? names(d.otherwise) : [])];
}

test('all 17,649 packages of the real AppStream load, each with its version, location and checksum', () => {
  const reader = new PrimaryReader(new Set(['x86_64', 'noarch', 'i686']), 'appstream');
  reader.write(xml);
  const packages = reader.end();
  assert.equal(packages.length, 17_649);
  assert.equal(packages.length, Number(/packages="(\d+)"/.exec(xml)![1]));
  for (const p of packages) assert.ok(p.checksum.value.length === 64, p.name);
  const withParens = packages.flatMap((p) => p.provides).filter((d) => /\w\(.*\)/.test(d.name));
  assert.ok(withParens.length > 10_000, 'provides such as libfoo.so.1()(64bit) and perl(Foo::Bar)');
  const rich = packages.flatMap((p) => [...p.requires, ...p.conflicts]).filter(isRich);
  assert.ok(rich.length > 100, `${rich.length} rich requires and conflicts`);
});

test('every one of the 1,395 rich dependencies in the real AppStream parses as rpm reads it', () => {
  const all = [...xml.matchAll(/<rpm:entry name="(\([^"]*)"/g)].map((m) => decodeEntities(m[1]!));
  assert.equal(all.length, 1395);
  const failures = all.flatMap((text) => {
    try {
      const tree = parseRich(text);
      // Nothing is lost: every word of the text that is not an operator or a version is a name.
      return names(tree).every((n) => text.includes(n)) ? [] : [`${text}: names lost`];
    } catch (e) {
      return [(e as Error).message];
    }
  });
  assert.deepEqual(failures, []);
});

test('names with parentheses inside rich dependencies, as the real metadata has them', () => {
  const t = parseRich('(libdecor-0.so.0()(64bit) if libwayland-client)');
  assert.ok(t.kind === 'op' && t.op === 'if');
  assert.deepEqual(names(t), ['libdecor-0.so.0()(64bit)', 'libwayland-client']);
  assert.deepEqual(names(parseRich('((python3dist(a) >= 1 with python3dist(a) < 2) or b(x86-64))')), [
    'python3dist(a)',
    'python3dist(a)',
    'b(x86-64)',
  ]);
  assert.throws(() => parseRich('(foo(bar or baz)'), /bad rich dependency/);
});
