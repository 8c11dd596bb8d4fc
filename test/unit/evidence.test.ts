/** The evidence `vmstub distros` shows: written by tests, each record backed by the test it names. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import {
  distroLabel,
  evidenceFor,
  installableLabel,
  NOT_RUN_HERE,
  reachedSsh,
  verifiedLabel,
  type Evidence,
} from '../../src/catalog/evidence.js';
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

test('the label is the furthest a test got, a real mirror before real binaries before synthetic ones', () => {
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
      source: 'synthetic',
      reached: 'bootstrap',
      arch: 'x86_64',
    },
    { distro: 'y', test: 'test/integration/b.test.ts', source: 'synthetic', reached: 'ssh', arch: 'x86_64' },
    { distro: 'y', test: 'test/e2e/c.test.ts', source: 'real-mirror', reached: 'ssh', arch: 'x86_64' },
    { distro: 'w', test: 'test/slow/d.test.ts', source: 'fixture-binaries', reached: 'ssh', arch: 'aarch64' },
    { distro: 'w', test: 'test/e2e/e.test.ts', source: 'synthetic', reached: 'ssh', arch: 'x86_64' },
  ];
  assert.equal(verifiedLabel('x', records), 'bootstrap, synthetic packages (x86_64, CI)');
  assert.equal(verifiedLabel('y', records), 'SSH, real mirror (x86_64, CI)');
  assert.equal(verifiedLabel('w', records), 'SSH, fixture of real binaries (aarch64, slow tier)');
  assert.deepEqual(
    evidenceFor('x', records).map((e) => e.test),
    ['test/integration/b.test.ts', 'test/unit/a.test.ts'],
  );
  assert.equal(verifiedLabel('z', records), 'untested here');
  assert.equal(
    distroLabel({ id: 'x', family: 'el' }, records),
    'bootstrap, synthetic packages (x86_64, CI); real data checked',
  );
  assert.equal(distroLabel({ id: 'y', family: 'deb' }, records), 'SSH, real mirror (x86_64, CI)');
  assert.equal(distroLabel({ id: 'z', family: 'el' }, records), 'untested here; no real metadata here');
  const metadataOnly: Evidence[] = [{ ...records[0]!, distro: 'm' }];
  assert.equal(distroLabel({ id: 'm', family: 'el' }, metadataOnly), 'real data checked (x86_64, CI)');
});

test('INSTALLABLE is yes only where a test reached SSH; create asks for the architecture too', () => {
  const records: Evidence[] = [
    { distro: 'a', test: 'test/e2e/a.test.ts', source: 'real-mirror', reached: 'ssh', arch: 'x86_64' },
    {
      distro: 'b',
      test: 'test/integration/b.test.ts',
      source: 'synthetic',
      reached: 'bootstrap',
      arch: 'x86_64',
    },
  ];
  assert.equal(installableLabel('a', records), 'yes');
  assert.equal(installableLabel('b', records), 'not booted here');
  assert.equal(installableLabel('c', records), 'untested here');
  assert.equal(reachedSsh('a', 'x86_64', records), true);
  assert.equal(reachedSsh('a', 'aarch64', records), false);
  assert.equal(reachedSsh('b', 'x86_64', records), false);
});

test('what no binary here can run is said beside the furthest record, for catalog entries only', () => {
  for (const id of Object.keys(NOT_RUN_HERE))
    assert.ok(
      CATALOG.some((d) => d.id === id),
      `${id} is not in the catalog`,
    );
  const records: Evidence[] = [
    {
      distro: 'centos7',
      test: 'test/integration/b.test.ts',
      source: 'synthetic',
      reached: 'bootstrap',
      arch: 'x86_64',
    },
  ];
  assert.equal(
    distroLabel({ id: 'centos7', family: 'el' }, records),
    `bootstrap, synthetic packages (x86_64, CI); no real metadata here; not run here: ${NOT_RUN_HERE.centos7}`,
  );
  assert.equal(
    distroLabel({ id: 'centos9stream', family: 'el' }, []),
    'untested here; no real metadata here',
  );
});

test('one record per entry, architecture, test and step reached (a test that reworded replaced its own)', () => {
  const keys = readRecords().map((r) => [r.distro, r.arch, r.test, r.reached].join(' '));
  assert.deepEqual(
    keys.filter((k, i) => keys.indexOf(k) !== i),
    [],
  );
});
