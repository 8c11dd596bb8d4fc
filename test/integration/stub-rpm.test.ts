/**
 * The stub's own rpm (Debian 13's 4.20, verifying through rpm-sequoia) against the real keys the
 * catalog names (the stub's copy of Debian's distribution-gpg-keys) and real signed packages
 * (test/fixtures/real/rpms): the stub's root is unpacked from the stub image and rpmkeys runs in it
 * with chroot. This is where the first pass of an RPM install verifies, and where it differs from the
 * host's rpm 4.18: current OpenPGP policy rejects SHA-1 self-signatures, and the catalog says which
 * releases need them accepted (sha1KeyBindings).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SHA1_KEY_BINDINGS_POLICY } from '../../src/bootstrap/rpm/policy.js';
import { RPM_DISTROS } from '../../src/catalog/rpm.js';
import { Sandbox } from '../helpers/cli.js';
import { recordEvidence } from '../helpers/evidence.js';
import { REAL } from '../helpers/cs9.js';
import { isRoot } from '../helpers/fixture.js';
import { buildStub } from '../helpers/stub.js';

const RPMS = join(REAL, 'rpms');

describe('the stub’s rpm with the real keys and packages', { skip: !isRoot && 'needs root (chroot)' }, () => {
  const box = new Sandbox();
  let root = '';
  before(() => {
    const stub = buildStub(box);
    root = mkdtempSync('/var/tmp/vmstub-stub-root-');
    execFileSync(
      'unsquashfs',
      ['-q', '-n', '-f', '-d', root, stub.image, 'usr', 'etc', 'bin', 'sbin', 'lib', 'lib64'],
      {
        stdio: 'ignore',
      },
    );
    mkdirSync(join(root, 'tmp', 'real'), { recursive: true });
    for (const f of ['389-ds-base-devel-1.3.8.4-15.el7.x86_64.rpm', 'monkeysphere-0.37-1.el7.noarch.rpm'])
      copyFileSync(join(RPMS, f), join(root, 'tmp', 'real', f));
    writeFileSync(join(root, 'tmp', 'policy.toml'), SHA1_KEY_BINDINGS_POLICY);
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
    box.cleanup();
  });

  let dbs = 0;
  /** rpmkeys in the stub's root, with a fresh database, as the stub's first pass runs it. */
  const rpmkeys = (args: string[], o: { policy: boolean; db?: string }) => {
    const db = o.db ?? `/tmp/db-${++dbs}`;
    mkdirSync(join(root, db), { recursive: true });
    const r = spawnSync('chroot', [root, 'rpmkeys', '--dbpath', db, ...args], {
      encoding: 'utf8',
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
        LC_ALL: 'C',
        ...(o.policy ? { RPM_SEQUOIA_CRYPTO_POLICY: '/tmp/policy.toml' } : {}),
      },
    });
    return { ...r, db, out: `${r.stdout}${r.stderr}` };
  };

  it('is rpm 4.19 or later, which checks keys through rpm-sequoia', () => {
    const v = execFileSync('chroot', [root, 'rpm', '--version'], { encoding: 'utf8' });
    const [, major, minor] = /RPM version (\d+)\.(\d+)/.exec(v)!;
    assert.ok(Number(major) > 4 || Number(minor) >= 19, v);
  });

  it('imports each catalog key as the catalog says: as it is, or only with SHA-1 bindings accepted', () => {
    const checked: string[] = [];
    for (const d of RPM_DISTROS) {
      if (d.keys.from !== 'stub') continue;
      for (const key of d.keys.files) {
        const plain = rpmkeys(['--import', key], { policy: false });
        const relaxed = rpmkeys(['--import', key], { policy: true });
        assert.ok(!/error|rejects/i.test(relaxed.out), `${d.id}: ${key} with the policy: ${relaxed.out}`);
        if (d.sha1KeyBindings)
          assert.match(
            plain.out,
            /Policy rejects|import failed/,
            `${d.id}: ${key} needs the policy, says the catalog`,
          );
        else assert.ok(!/error|rejects/i.test(plain.out), `${d.id}: ${key} as it is: ${plain.out}`);
        checked.push(d.id);
      }
    }
    assert.ok(
      checked.includes('centos7') && checked.includes('centos9stream') && checked.includes('fedora42'),
    );
  });

  it('verifies real CentOS 7 and EPEL 7 packages with their real keys under that policy, and only so', () => {
    const keys = [
      '/usr/share/distribution-gpg-keys/centos/RPM-GPG-KEY-CentOS-7',
      '/usr/share/distribution-gpg-keys/epel/RPM-GPG-KEY-EPEL-7',
    ];
    const packages = [
      '/tmp/real/389-ds-base-devel-1.3.8.4-15.el7.x86_64.rpm',
      '/tmp/real/monkeysphere-0.37-1.el7.noarch.rpm',
    ];
    const imported = rpmkeys(['--import', ...keys], { policy: true });
    assert.equal(imported.status, 0, imported.out);
    const verify = (policy: boolean) =>
      rpmkeys(['--define', '_pkgverify_level signature', '-K', ...packages], { policy, db: imported.db });
    const good = verify(true);
    assert.equal(good.status, 0, good.out);
    assert.equal(good.out.match(/digests signatures OK/g)?.length, 2, good.out);
    const strict = verify(false);
    assert.notEqual(strict.status, 0, 'without the policy the stub’s rpm refuses them');
    assert.match(strict.out, /SHA1 is not considered secure/);
    recordEvidence(import.meta.url, [
      {
        distro: 'centos7',
        source: 'real-metadata',
        reached: 'metadata',
        what: "the stub's rpm verifies real CentOS 7 packages with the catalog's key, its SHA-1 bindings accepted",
      },
    ]);
  });
});
