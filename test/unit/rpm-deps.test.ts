import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseLatest, sha512From } from '../../src/bootstrap/gentoo/stage3.js';
import { parseRich, rangesOverlap } from '../../src/bootstrap/rpm/deps.js';
import { PrimaryReader, parseRepomd, type Dep, type RpmPackage } from '../../src/bootstrap/rpm/metadata.js';
import { Resolver } from '../../src/bootstrap/rpm/resolve.js';
import { buildPlan } from '../../src/installer/plan/index.js';
import { mkfsArgv } from '../../src/installer/render.js';
import { resolveSpec } from '../../src/installer/spec.js';

const dep = (s: string): Dep => {
  const [name, op, evr] = s.split(' ');
  if (!op) return { name: name! };
  const flags = ({ '=': 'EQ', '<': 'LT', '<=': 'LE', '>': 'GT', '>=': 'GE' } as const)[op as '=']!;
  const m = /^(?:(\d+):)?([^-]+)(?:-(.+))?$/.exec(evr!)!;
  return { name: name!, flags, epoch: m[1], ver: m[2], rel: m[3] };
};

test('version ranges: what rpm accepts as satisfying a requirement', () => {
  const cases: [string, string, boolean][] = [
    ['foo = 2.0-1', 'foo >= 2.0', true],
    ['foo = 1.9-1', 'foo >= 2.0', false],
    ['foo = 2.0-1', 'foo < 2.0', false],
    ['foo = 2.0-1', 'foo = 2.0', true], // no release in the requirement: releases not compared
    ['foo = 2.0-1', 'foo = 2.0-2', false],
    ['foo = 1:1.0-1', 'foo > 2.0', true], // the epoch wins
    ['foo', 'foo >= 99', true], // an unversioned provide satisfies any range
    ['foo >= 3', 'foo < 2', false],
    ['foo >= 3', 'foo > 4', true],
  ];
  for (const [p, r, want] of cases) assert.equal(rangesOverlap(dep(p), dep(r)), want, `${p} vs ${r}`);
});

test('rich dependencies parse into a tree; bad ones are refused', () => {
  assert.deepEqual(parseRich('(a or (b >= 1.2 and c))'), {
    kind: 'op',
    op: 'or',
    args: [
      { kind: 'simple', dep: { name: 'a' } },
      {
        kind: 'op',
        op: 'and',
        args: [
          { kind: 'simple', dep: { name: 'b', flags: 'GE', ver: '1.2' } },
          { kind: 'simple', dep: { name: 'c' } },
        ],
      },
    ],
  });
  const cond = parseRich('(x if y else z)');
  assert.ok(cond.kind === 'op' && cond.op === 'if' && cond.otherwise?.kind === 'simple');
  assert.throws(() => parseRich('(a or)'), /bad rich dependency/);
  assert.throws(() => parseRich('(a xor b)'), /unknown operator xor/);
});

const pkg = (name: string, ver: string, o: Partial<RpmPackage> = {}): RpmPackage => ({
  name,
  arch: 'noarch',
  epoch: '0',
  ver,
  rel: '1',
  href: `Packages/${name}-${ver}.rpm`,
  checksum: { type: 'sha256', value: `${name}${ver}` },
  size: 1,
  provides: [],
  requires: [],
  conflicts: [],
  obsoletes: [],
  files: [],
  repo: 'r',
  ...o,
});

test('resolver: newest version, several constraints on one name, preferred alternatives, conflicts', () => {
  const r = new Resolver([
    pkg('app', '1', { requires: [dep('lib >= 2'), dep('lib < 3'), { name: '(x or y)' }, dep('mta')] }),
    pkg('lib', '1'),
    pkg('lib', '2'),
    pkg('lib', '2.5'),
    pkg('lib', '3'),
    pkg('x', '1'),
    pkg('y', '1'),
    pkg('postfix', '1', { provides: [dep('mta')], requires: [dep('y')] }),
    pkg('exim', '1', { provides: [dep('mta')] }),
  ]);
  const names = r.resolve(['app']).packages.map((p) => `${p.name}-${p.ver}`);
  // exim: the shorter name among mta's providers; y: pulled in by postfix? no, exim needs nothing, so x.
  assert.deepEqual(names, ['app-1', 'lib-2.5', 'exim-1', 'x-1']);
  const clash = new Resolver([pkg('a', '1', { requires: [dep('b')], conflicts: [dep('b')] }), pkg('b', '1')]);
  assert.throws(() => clash.resolve(['a']), /a-1-1\.noarch conflicts with b-1-1\.noarch/);
  assert.throws(
    () => new Resolver([pkg('a', '1', { requires: [dep('nope >= 1')] })]).resolve(['a']),
    /nothing provides nope >= 1 \(a needs it\)/,
  );
  // Provided, but only by a version of a name another package's requirement already chose.
  const pinned = new Resolver([
    pkg('app', '1', { requires: [dep('lib'), dep('plugin')] }),
    pkg('lib', '2', { provides: [dep('api = 2')] }),
    pkg('lib', '1', { provides: [dep('api = 1')] }),
    pkg('plugin', '1', { requires: [dep('api = 1')] }),
  ]);
  assert.throws(
    () => pinned.resolve(['app']),
    /plugin needs api = 1, which lib-1-1\.noarch provides, but lib-2-1\.noarch is already chosen/,
  );
});

test('primary.xml and repomd.xml: fields, entities, architectures', () => {
  const r = new PrimaryReader(new Set(['x86_64', 'noarch']), 'base');
  const xml = `<?xml version="1.0"?><metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
<package type="rpm"><name>a&amp;b</name><arch>x86_64</arch><version epoch="1" ver="2.0" rel="3.el9"/>
<checksum type="sha256" pkgid="YES">abc</checksum><size package="42"/><location href="Packages/a.rpm"/>
<format><rpm:requires><rpm:entry name="(c &gt;= 1 or d)"/><rpm:entry name="e" flags="GE" ver="1" pre="1"/></rpm:requires>
<file>/usr/bin/a</file></format></package>
<package type="rpm"><name>skip</name><arch>i686</arch><version epoch="0" ver="1" rel="1"/><checksum type="sha256">x</checksum><location href="s"/></package>
</metadata>`;
  // Fed in small pieces, as a stream would.
  for (let i = 0; i < xml.length; i += 7) r.write(xml.slice(i, i + 7));
  const [p, ...rest] = r.end();
  assert.equal(rest.length, 0);
  assert.equal(p!.name, 'a&b');
  assert.equal(`${p!.epoch}:${p!.ver}-${p!.rel}`, '1:2.0-3.el9');
  assert.deepEqual(p!.requires, [{ name: '(c >= 1 or d)' }, { name: 'e', flags: 'GE', ver: '1', pre: true }]);
  assert.deepEqual(p!.files, ['/usr/bin/a']);
  const md = parseRepomd(
    '<repomd><data type="primary"><checksum type="sha256">ff</checksum><open-checksum type="sha256">ee</open-checksum><location href="repodata/p.xml.zst"/><size>9</size></data></repomd>',
  );
  assert.deepEqual(md, [
    {
      type: 'primary',
      href: 'repodata/p.xml.zst',
      checksum: { type: 'sha256', value: 'ff' },
      openChecksum: { type: 'sha256', value: 'ee' },
      size: 9,
    },
  ]);
  assert.throws(() => parseRepomd('<repomd></repomd>'), /lists no metadata/);
});

test('Gentoo pointer and DIGESTS files', () => {
  const latest =
    '# Latest as of Sun, 16 Nov 2025\n# ts=1763300000\n20251116T161545Z/stage3-amd64-systemd-20251116T161545Z.tar.xz 287654321\n';
  assert.equal(
    parseLatest(latest, 'stage3-amd64-systemd'),
    '20251116T161545Z/stage3-amd64-systemd-20251116T161545Z.tar.xz',
  );
  assert.throws(
    () => parseLatest('# nothing\n', 'stage3-amd64-systemd'),
    /names no stage3-amd64-systemd tarball/,
  );
  const sha = 'a'.repeat(128);
  const blake = 'b'.repeat(128);
  const digests = `# BLAKE2B HASH\n${blake}  stage3.tar.xz\n# SHA512 HASH\n${sha}  stage3.tar.xz\n${'c'.repeat(128)}  stage3.tar.xz.CONTENTS.gz\n`;
  assert.equal(sha512From(digests, 'stage3.tar.xz'), sha);
  assert.throws(() => sha512From(`# BLAKE2B HASH\n${blake}  stage3.tar.xz\n`, 'stage3.tar.xz'), /no SHA512/);
});

const defaults = { hostname: 'h', timezone: 'UTC', sshKeys: [], arch: 'x86_64' as const };
const actions = (distro: string) =>
  buildPlan(resolveSpec({ distro }, defaults)).steps.flatMap((s) => s.actions.map((a) => JSON.stringify(a)));

test('RPM plans: the database started afresh only where the stub cannot write it natively; keys; XFS v4', () => {
  assert.ok(actions('centos7').some((a) => a.includes('"--initdb"')));
  assert.ok(actions('rocky8').some((a) => a.includes('"--initdb"')));
  assert.ok(!actions('almalinux9').some((a) => a.includes('"--initdb"')));
  assert.ok(actions('fedora42').some((a) => a.includes('"dbpath":"/usr/lib/sysimage/rpm"')));
  assert.ok(actions('miraclelinux8').some((a) => a.includes('"keysFromFirstPackage":["/etc/pki/rpm-gpg"]')));
  assert.ok(
    actions('almalinux9').some((a) => a.includes('distribution-gpg-keys/alma/RPM-GPG-KEY-AlmaLinux-9')),
  );
  assert.deepEqual(mkfsArgv('xfs', '3.10', '/dev/x', false, true), [
    'mkfs.xfs',
    '-q',
    '-m',
    'crc=0',
    '-n',
    'ftype=0',
    '/dev/x',
  ]);
  assert.ok(
    mkfsArgv('xfs', '4.18', '/dev/x', false).includes('options=/usr/share/xfsprogs/mkfs/lts_4.19.conf'),
  );
});
