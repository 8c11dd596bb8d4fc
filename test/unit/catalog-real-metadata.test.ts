/**
 * The catalog against what CentOS Stream 9 really publishes (test/fixtures/real/README.md): every
 * package an EL9 entry installs, in either pass, must be a package of the real BaseOS or AppStream of
 * January 2025, for the architecture installed (or noarch).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { RPM_DISTROS } from '../../src/catalog/rpm.js';
import { firstPassPackages, systemPackages } from '../../src/installer/plan/rpm.js';
import { resolveSpec } from '../../src/installer/spec.js';
import { recordEvidence } from '../helpers/evidence.js';
import { repodataFile } from '../helpers/cs9.js';

/** name -> architectures, from a repodata file whose <package> elements carry name and arch attributes or children. */
function packagesIn(repo: string, kind: 'primary' | 'filelists'): Map<string, Set<string>> {
  const xml = gunzipSync(readFileSync(repodataFile(repo, `-${kind}.xml.gz`))).toString('utf8');
  const found = new Map<string, Set<string>>();
  const pattern =
    kind === 'filelists'
      ? /<package pkgid="[^"]*" name="([^"]+)" arch="([^"]+)"/g
      : /<package type="rpm">\s*<name>([^<]+)<\/name>\s*<arch>([^<]+)<\/arch>/g;
  for (const [, name, arch] of xml.matchAll(pattern)) {
    if (!found.has(name!)) found.set(name!, new Set());
    found.get(name!)!.add(arch!);
  }
  return found;
}

const baseos = packagesIn('cs9-baseos', 'filelists');
const appstream = packagesIn('cs9-appstream', 'primary');

test('the real metadata read here is the whole of both repositories', () => {
  const pairs = (m: Map<string, Set<string>>) => [...m.values()].reduce((n, a) => n + a.size, 0);
  assert.equal(pairs(baseos), 1234, 'BaseOS: 4,572 packages, 1,234 names and architectures');
  assert.ok(pairs(appstream) > 5000, 'AppStream: 17,649 packages');
  assert.ok(baseos.has('centos-stream-release') && baseos.has('kernel'));
  assert.ok(appstream.has('qemu-guest-agent'));
});

const spec = (id: string, locale: string) =>
  resolveSpec({ distro: id, locale }, { hostname: 'web1', timezone: 'UTC', sshKeys: [], arch: 'x86_64' });

/** The packages of pass 1 and pass 2 that neither repository has for x86_64. */
function missing(id: string, locale: string): string[] {
  const d = RPM_DISTROS.find((x) => x.id === id)!;
  const names = new Set([...firstPassPackages(d), ...systemPackages(d, spec(id, locale))]);
  return [...names].filter((n) => {
    const arches = new Set([...(baseos.get(n) ?? []), ...(appstream.get(n) ?? [])]);
    return !arches.has('x86_64') && !arches.has('noarch');
  });
}

test('every package CentOS Stream 9 installs, in both passes and for several locales, is in the real repositories', () => {
  for (const locale of ['en_US.UTF-8', 'de_DE.UTF-8', 'ja_JP.UTF-8', 'C.UTF-8'])
    assert.deepEqual(missing('centos9stream', locale), [], locale);
  recordEvidence(import.meta.url, [
    {
      distro: 'centos9stream',
      source: 'real-metadata',
      reached: 'metadata',
      what: 'every package of both passes is in the real BaseOS or AppStream',
    },
  ]);
});

test('AlmaLinux 9 installs the same packages but its own release package, which CentOS does not publish', () => {
  assert.deepEqual(missing('almalinux9', 'en_US.UTF-8'), ['almalinux-release']);
  recordEvidence(import.meta.url, [
    {
      distro: 'almalinux9',
      source: 'real-metadata',
      reached: 'metadata',
      what: "CentOS Stream 9's: all but almalinux-release",
    },
  ]);
});
