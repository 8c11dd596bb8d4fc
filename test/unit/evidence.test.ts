/** The evidence `vmstub distros` shows: written by tests, each record backed by the test it names. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { distroLabel, evidenceFor, verifiedLabel, type Evidence } from '../../src/catalog/evidence.js';
import { CATALOG } from '../../src/catalog/index.js';
import { VMSTUB } from '../helpers/cli.js';
import { readRecords } from '../helpers/evidence.js';

const ROOT = resolve(VMSTUB, '..', '..');

test('every record names a catalog entry and a test that records exactly that', () => {
  const records = readRecords();
  for (const r of records) {
    assert.ok(
      CATALOG.some((d) => d.id === r.distro),
      `${r.distro} is not in the catalog`,
    );
    const file = resolve(ROOT, r.test);
    assert.ok(existsSync(file), `${r.test} does not exist`);
    const source = readFileSync(file, 'utf8');
    assert.match(source, /recordEvidence\(/, `${r.test} records no evidence`);
    assert.ok(source.includes(`source: '${r.source}'`), `${r.test} never records source ${r.source}`);
    assert.ok(source.includes(`reached: '${r.reached}'`), `${r.test} never records reached ${r.reached}`);
  }
});

test('no catalog entry says by hand how it was verified', () => {
  for (const d of CATALOG) assert.ok(!('verified' in d), `${d.id} carries a hand-written verified field`);
});

test('the label is the furthest a test got, a real mirror before a fixture at the same depth', () => {
  const records: Evidence[] = [
    {
      distro: 'x',
      test: 'test/unit/a.test.ts',
      source: 'real-metadata',
      reached: 'metadata',
      arch: 'x86_64',
    },
    {
      distro: 'x',
      test: 'test/integration/b.test.ts',
      source: 'fixture',
      reached: 'bootstrap',
      arch: 'x86_64',
    },
    { distro: 'y', test: 'test/integration/b.test.ts', source: 'fixture', reached: 'ssh', arch: 'x86_64' },
    { distro: 'y', test: 'test/e2e/c.test.ts', source: 'real-mirror', reached: 'ssh', arch: 'x86_64' },
  ];
  assert.equal(verifiedLabel('x', records), 'bootstrap, fixture (x86_64)');
  assert.equal(verifiedLabel('y', records), 'SSH, real mirror (x86_64)');
  assert.deepEqual(
    evidenceFor('x', records).map((e) => e.test),
    ['test/integration/b.test.ts', 'test/unit/a.test.ts'],
  );
  assert.equal(verifiedLabel('z', records), 'not verified here');
  assert.equal(
    distroLabel({ id: 'x', family: 'el' }, records),
    'bootstrap, fixture (x86_64); real data checked',
  );
  assert.equal(distroLabel({ id: 'y', family: 'deb' }, records), 'SSH, real mirror (x86_64)');
  assert.equal(distroLabel({ id: 'z', family: 'el' }, records), 'not verified here; no real metadata here');
  const metadataOnly: Evidence[] = [{ ...records[0]!, distro: 'm' }];
  assert.equal(distroLabel({ id: 'm', family: 'el' }, metadataOnly), 'real data checked (x86_64)');
});
