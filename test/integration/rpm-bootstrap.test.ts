/**
 * The RPM bootstrap against fixture repositories built here with rpmbuild, rpmsign and createrepo_c,
 * served on loopback: the real rpm installs into a directory. Checks the choice of packages (versions,
 * rich and file dependencies) against dnf's on the same repository, signatures and checksums enforced,
 * and that a refused install leaves nothing installed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { recordEvidence } from '../helpers/evidence.js';
import { RPM_DISTROS } from '../../src/catalog/rpm.js';
import { isRoot } from '../helpers/fixture.js';
import {
  buildRpms,
  EXPECTED,
  fixturePackages,
  installedIn,
  makeRepo,
  makeSigningKey,
  signRpms,
  type SigningKey,
} from '../helpers/rpm-repo.js';

describe(
  'vmstub rpm-bootstrap (fixture repositories)',
  { skip: !isRoot && 'needs root (rpm --root chroots)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-rpm-'));
    const sandbox = new Sandbox();
    let keyA: SigningKey;
    let keyB: SigningKey;
    let url = '';
    let zstdUrl = '';
    let tamperedUrl = '';
    let resignedUrl = '';
    const servers: Server[] = [];

    const freshCache = () => {
      sandbox.env.VMSTUB_CACHE = mkdtempSync(join(work, 'cache-'));
    };
    const root = (name: string) => {
      const r = join(work, 'roots', name);
      mkdirSync(r, { recursive: true });
      return r;
    };

    /** vmstub rpm-bootstrap of the fixture's package manager and shell into a new root, with a fresh cache. */
    const bootstrap = (name: string, repoUrl: string, keyArgs: string[]) => {
      freshCache();
      const target = root(name);
      const args = ['rpm-bootstrap', '--repo', repoUrl, '--root', target, ...keyArgs, 'pkgmgr', 'shell'];
      return { target, result: sandbox.runAsync(args) };
    };

    before(async () => {
      keyA = makeSigningKey(work, 'a');
      keyB = makeSigningKey(work, 'b');
      const rpms = buildRpms(work, fixturePackages(readFileSync(keyA.publicKey, 'utf8')));
      signRpms(rpms, keyA);
      const repo = makeRepo(join(work, 'repo'), rpms);
      const zstdRepo = makeRepo(join(work, 'repo-zstd'), rpms, { zstdPrimary: true });
      const tampered = join(work, 'repo-tampered');
      cpSync(repo, tampered, { recursive: true });
      const victim = join(tampered, 'Packages', 'libfoo-2.5-1.noarch.rpm');
      const bytes = readFileSync(victim);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0xff, bytes.length - 100);
      writeFileSync(victim, bytes);
      // The same flipped package with the repository's metadata made anew: only the signature can tell.
      const resigned = makeRepo(join(work, 'repo-flipped-regenerated'), [
        ...rpms.filter((f) => !f.endsWith('libfoo-2.5-1.noarch.rpm')),
        victim,
      ]);
      for (const [dir, set] of [
        [repo, (u: string) => (url = u)],
        [resigned, (u: string) => (resignedUrl = u)],
        [zstdRepo, (u: string) => (zstdUrl = u)],
        [tampered, (u: string) => (tamperedUrl = u)],
      ] as const) {
        const s = await serveDirectory(dir, 'os');
        servers.push(s.server);
        set(s.url);
      }
    });

    after(() => {
      for (const s of servers) s.close();
      sandbox.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    it('chooses the versions dnf chooses: ranges, epochs, rich and file dependencies', async () => {
      freshCache();
      const r = await sandbox.runAsync([
        'rpm-bootstrap',
        '--repo',
        url,
        '--solve-only',
        '--json',
        'pkgmgr',
        'shell',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const ours = (JSON.parse(r.stdout) as { nevra: string; reason: string }[]).map((x) =>
        x.nevra.replace(/\.noarch$/, '').replace(/-1:/, '-'),
      );
      assert.deepEqual([...ours].sort(), EXPECTED);

      // dnf (libsolv) on the same repository, installing for real into another root. From the directory:
      // this process serves the HTTP mirror, and a synchronous dnf would block it.
      const dnfRoot = root('dnf');
      execFileSync(
        'dnf',
        [
          '-y',
          '-q',
          `--installroot=${dnfRoot}`,
          '--releasever=9',
          '--setopt=reposdir=/nonexistent',
          `--repofrompath=fixture,file://${join(work, 'repo')}`,
          '--setopt=install_weak_deps=False',
          '--setopt=gpgcheck=0',
          '--setopt=cachedir=' + join(work, 'dnf-cache'),
          'install',
          'pkgmgr',
          'shell',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RPM_FORCE_DEBIAN: '1' } },
      );
      // Debian's rpm keeps dnf's database in ~/.rpmdb (which is why vmstub always names --dbpath).
      assert.deepEqual(installedIn(dnfRoot, '/root/.rpmdb'), EXPECTED);
    });

    it('installs into an empty root in dependency order, signatures verified, scriptlets run', async () => {
      const { target, result } = bootstrap('good', url, ['--key', keyA.publicKey]);
      const r = await result;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(installedIn(target), EXPECTED);
      assert.equal(readFileSync(join(target, 'usr/lib/libfoo.txt'), 'utf8'), 'libfoo 2.5\n');
      assert.equal(readFileSync(join(target, 'usr/lib/libbar.txt'), 'utf8'), '1:1.0\n');
      assert.ok(existsSync(join(target, 'usr/libexec/helper')));
      // %post ran with the shell already in place and the release file already unpacked.
      assert.equal(
        readFileSync(join(target, 'var/log/fixture/post.log'), 'utf8'),
        'pkgmgr Fixture Linux 9\n',
      );
      assert.ok(existsSync(join(target, 'var/lib/rpm/rpmdb.sqlite')), 'the database is where --dbpath says');
      assert.ok(!existsSync(join(target, 'root/.rpmdb')));
      assert.ok(!existsSync(join(target, 'usr/share/unrelated')));
      recordEvidence(
        import.meta.url,
        RPM_DISTROS.map((d) => ({
          distro: d.id,
          source: 'synthetic',
          reached: 'bootstrap',
          what: "vmstub's RPM bootstrap on packages the test builds, not the distribution's",
        })),
      );
    });

    it('reads zstd metadata, and can take the key from the release package itself', async () => {
      freshCache();
      const target = root('zstd');
      const r = await sandbox.runAsync([
        'rpm-bootstrap',
        '--repo',
        zstdUrl,
        '--root',
        target,
        '--key-from-first',
        '/etc/pki/rpm-gpg/RPM-GPG-KEY-fixture',
        'fixture-release',
        'pkgmgr',
        'shell',
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(installedIn(target), EXPECTED);
    });

    it('refuses packages signed by a key it was not given, and installs nothing', async () => {
      const { target, result } = bootstrap('wrong-key', url, ['--key', keyB.publicKey]);
      const r = await result;
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /rpm-bootstrap: signature check failed: \S+\.rpm is signed with key [0-9a-f]{8}, which is not one of the keys given \([0-9A-F]{8} \(vmstub fixture b /,
      );
      assert.equal(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('vmstub')).length,
        1,
        r.stderr,
      );
      assert.deepEqual(installedIn(target), []);
      assert.ok(!existsSync(join(target, 'usr/bin/pkgmgr')));
    });

    it('refuses a package whose bytes differ from the checksum the repository lists, before rpm runs', async () => {
      const { target, result } = bootstrap('tampered', tamperedUrl, ['--key', keyA.publicKey]);
      const r = await result;
      assert.equal(r.code, 1);
      assert.match(r.stderr, /libfoo-2\.5-1\.noarch\.rpm: sha256 is [0-9a-f]+, the repository says/);
      assert.deepEqual(readdirSync(target), [], 'nothing written into the root');
      const cached = readdirSync(join(sandbox.env.VMSTUB_CACHE!, 'rpm-bootstrap', 'packages'));
      assert.ok(!cached.some((f) => f.includes('libfoo-2.5')), 'the bad download is not kept');
    });

    it('refuses a package changed after signing though the metadata lists its checksum, and installs nothing', async () => {
      const { target, result } = bootstrap('flipped', resignedUrl, ['--key', keyA.publicKey]);
      const r = await result;
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /rpm-bootstrap: signature check failed: libfoo-2\.5-1\.noarch\.rpm does not match its signature: it changed after it was signed/,
      );
      assert.deepEqual(installedIn(target), []);
      assert.ok(!existsSync(join(target, 'usr/bin/pkgmgr')));
    });

    it('says what is missing when nothing provides a requirement', async () => {
      freshCache();
      const r = await sandbox.runAsync(['rpm-bootstrap', '--repo', url, '--solve-only', 'no-such-package']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no package named no-such-package/);
      const bad = await sandbox.runAsync([
        'rpm-bootstrap',
        '--repo',
        'ftp://example.org/',
        '--solve-only',
        'x',
      ]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /not an http, https or file URL/);
    });
  },
);
