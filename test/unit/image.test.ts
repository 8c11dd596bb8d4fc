import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { CATALOG, findDistro } from '../../src/catalog/index.js';
import { parseArch } from '../../src/util/arch.js';
import { mmdebstrapArgs, releaseDate, sourceLine } from '../../src/image/mmdebstrap.js';
import { mksquashfsArgs } from '../../src/image/squashfs.js';
import { StageCache, stageKey } from '../../src/image/stage-cache.js';
import { bootstrapPackages, buildSources, NO_DOCS_DPKG_OPTIONS } from '../../src/image/build.js';
import { treeDigest } from '../../src/image/installation.js';
import { installScript, stubBanner, stubConfig, writeStubOverlay } from '../../src/image/stub.js';
import { VMSTUB } from '../helpers/cli.js';

const mirrors = {
  mirror: 'http://mirror.example/debian',
  securityMirror: 'http://security.example/debian-security',
};
const GUEST = resolve(VMSTUB, '..', '..', 'guest', 'stub');

test("the stub's recipe is an image config: Debian 13 from the given mirrors, the bootstrap tools, the guest hook and files, the architecture's kernel", () => {
  const c = stubConfig('x86_64', mirrors, GUEST);
  assert.equal(c.name, 'stub');
  assert.equal(c.distro.id, 'debian13');
  assert.deepEqual(buildSources(c).map(sourceLine), [
    'deb http://mirror.example/debian trixie main',
    'deb http://mirror.example/debian trixie-updates main',
    'deb http://security.example/debian-security trixie-security main',
  ]);
  assert.equal(c.kernel, 'linux-image-cloud-amd64');
  for (const p of ['kexec-tools', 'debootstrap', 'mmdebstrap', 'dnf', 'rpm', 'nodejs', 'qemu-guest-agent'])
    assert.ok(c.packages.includes(p), p);
  assert.ok(bootstrapPackages(c).includes('busybox-static'), 'the system initramfs is made of busybox');
  assert.equal(c.hook, join(GUEST, 'customize.sh'));
  assert.equal(c.files, join(GUEST, 'rootfs'));
  assert.equal(c.docs, false);
  assert.deepEqual(c.formats, ['system']);
  assert.match(c.cmdline, /lsm=landlock/);
  assert.equal(stubConfig('aarch64', mirrors, GUEST).kernel, 'linux-image-cloud-arm64');
  assert.equal(stubConfig('riscv64', mirrors, GUEST).kernel, 'linux-image-riscv64');
  // Without mirrors: Debian's own.
  assert.equal(stubConfig('x86_64', {}, GUEST).mirror, 'http://deb.debian.org/debian');
});

test('mmdebstrap argv: mode by privilege, sorted packages, keyring, dpkg rules, hooks, then suite, target, sources', () => {
  const c = stubConfig('x86_64', mirrors, GUEST);
  const r = {
    suite: 'trixie',
    arch: 'x86_64' as const,
    sources: buildSources(c),
    variant: 'minbase' as const,
    packages: ['zstd', 'curl', 'nodejs'],
    keyring: '/usr/share/keyrings/debian-archive-keyring.gpg',
    dpkgOptions: NO_DOCS_DPKG_OPTIONS,
    customizeHooks: ['/g/hook.sh "$1"'],
  };
  const asRoot = mmdebstrapArgs(r, '/tmp/target', true);
  assert.equal(asRoot[0], '--mode=root');
  assert.equal(mmdebstrapArgs(r, '/tmp/target', false)[0], '--mode=unshare');
  assert.ok(asRoot.includes('--architectures=amd64'));
  assert.ok(asRoot.includes('--variant=minbase'));
  assert.ok(asRoot.includes('--include=curl,nodejs,zstd'));
  assert.ok(asRoot.includes('--keyring=/usr/share/keyrings/debian-archive-keyring.gpg'));
  assert.ok(asRoot.includes('--dpkgopt=path-exclude=/usr/share/man/*'));
  assert.ok(asRoot.includes('--customize-hook=/g/hook.sh "$1"'));
  const suiteAt = asRoot.indexOf('trixie');
  assert.deepEqual(asRoot.slice(suiteAt, suiteAt + 2), ['trixie', '/tmp/target']);
  assert.equal(asRoot.at(-1), 'deb http://security.example/debian-security trixie-security main');
});

test('InRelease dates', () => {
  assert.equal(
    releaseDate('Origin: Debian\nSuite: stable\nDate: Sat, 08 Nov 2026 10:11:12 UTC\nValid-Until: x\n'),
    'Sat, 08 Nov 2026 10:11:12 UTC',
  );
  assert.equal(releaseDate('Origin: Debian\n'), undefined);
});

test('stage keys ignore property order and notice any change', () => {
  assert.equal(
    stageKey({ a: 1, b: [1, 2], c: { x: 1, y: 2 } }),
    stageKey({ c: { y: 2, x: 1 }, b: [1, 2], a: 1 }),
  );
  assert.notEqual(stageKey({ a: 1, b: [1, 2] }), stageKey({ a: 1, b: [2, 1] }));
  assert.notEqual(
    stageKey({ snapshot: { trixie: 'Sat, 08 Nov 2026' } }),
    stageKey({ snapshot: { trixie: 'Sat, 15 Nov 2026' } }),
  );
});

test('stage cache: a miss builds, a hit does not, a failure leaves nothing, old entries are pruned', async () => {
  const cache = new StageCache(mkdtempSync(join(tmpdir(), 'stages-')));
  let builds = 0;
  const fill = async (dir: string) => {
    builds++;
    writeFileSync(join(dir, 'out'), 'x');
  };
  assert.equal((await cache.build('rootfs', 'k1', fill)).hit, false);
  const again = await cache.build('rootfs', 'k1', fill);
  assert.equal(again.hit, true);
  assert.equal(builds, 1);
  assert.equal(readFileSync(join(again.dir, 'out'), 'utf8'), 'x');
  await assert.rejects(
    cache.build('rootfs', 'bad', async () => Promise.reject(new Error('mmdebstrap failed'))),
    /mmdebstrap failed/,
  );
  assert.equal(cache.lookup('rootfs', 'bad'), undefined);
  assert.deepEqual(
    readdirSync(cache.root).filter((d) => d.includes('bad')),
    [],
    'no half-built directory is left',
  );
  await cache.build('rootfs', 'k2', fill);
  await new Promise((r) => setTimeout(r, 10));
  await cache.build('rootfs', 'k3', fill);
  assert.equal(cache.lookup('rootfs', 'k1'), undefined, 'keeps the two newest');
  assert.ok(cache.lookup('rootfs', 'k2') && cache.lookup('rootfs', 'k3'));
  assert.equal(cache.newest('rootfs'), cache.lookup('rootfs', 'k3'));
});

test('install scripts and banner come from the catalog', () => {
  assert.equal(
    installScript(findDistro('debian12')).split('\n').at(-2),
    'exec unshare --mount --propagation private vmstub install debian12 "$@"',
  );
  // Every entry is installable now; an entry that is not says so and fails.
  const planned = installScript({ ...findDistro('gentoo'), installable: false });
  assert.match(planned, /not installable by this version of vmstub yet/);
  assert.match(planned, /\nexit 1\n$/);
  const banner = stubBanner(CATALOG);
  assert.match(banner, /\.\/debian12\.sh/);
  assert.match(banner, /\.\/gentoo\.sh/);
});

test('the stub overlay: the bundle, one executable script per catalog entry, the banner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'overlay-'));
  const bundle = join(dir, 'bundle.cjs');
  writeFileSync(bundle, '// bundle');
  const out = join(dir, 'out');
  writeStubOverlay(out, bundle, CATALOG);
  assert.equal(readFileSync(join(out, 'vmstub', 'vmstub.cjs'), 'utf8'), '// bundle');
  assert.deepEqual(readdirSync(join(out, 'vmstub', 'root')).sort(), CATALOG.map((d) => `${d.id}.sh`).sort());
  assert.equal(statSync(join(out, 'vmstub', 'root', 'debian12.sh')).mode & 0o777, 0o755);
  assert.ok(existsSync(join(out, 'vmstub', 'motd')));
});

test('tree digests follow content and mode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'digest-'));
  writeFileSync(join(dir, 'a'), '1');
  const d1 = treeDigest(dir);
  assert.equal(treeDigest(dir), d1);
  writeFileSync(join(dir, 'a'), '2');
  const d2 = treeDigest(dir);
  assert.notEqual(d2, d1);
  chmodSync(join(dir, 'a'), 0o755);
  assert.notEqual(treeDigest(dir), d2);
});

test('mksquashfs argv and architectures', () => {
  assert.deepEqual(mksquashfsArgs('/src', '/out.sqfs', { compression: 'zstd', level: 19, blockSize: '1M' }), [
    '/src',
    '/out.sqfs',
    '-noappend',
    '-quiet',
    '-no-progress',
    '-comp',
    'zstd',
    '-b',
    '1M',
    '-Xcompression-level',
    '19',
  ]);
  assert.equal(parseArch('amd64'), 'x86_64');
  assert.equal(parseArch('aarch64'), 'aarch64');
  assert.throws(() => parseArch('sparc'), /unknown architecture 'sparc'/);
});
