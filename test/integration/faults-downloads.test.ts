/**
 * Faults in the network, against the RPM bootstrap (our own downloads): a fixture repository built with
 * rpmbuild, rpmsign and createrepo_c, served on loopback through a proxy that drops connections part way,
 * answers 500, stalls, truncates or corrupts. Each run ends in success or in one clear line, never in
 * an unverified package installed, and a clean run afterwards works.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { faultyMirror, type FaultRule } from '../helpers/fault-proxy.js';
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
  'faults in downloads: vmstub rpm-bootstrap through a misbehaving mirror',
  { skip: !isRoot && 'needs root (rpm --root)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-faults-rpm-'));
    const box = new Sandbox();
    let key: SigningKey;
    let repoDir = '';
    let upstream = '';
    let server: Server | undefined;
    let pkgmgrSize = 0;
    let runs = 0;

    before(async () => {
      key = makeSigningKey(work, 'a');
      const rpms = buildRpms(work, fixturePackages(readFileSync(key.publicKey, 'utf8')));
      signRpms(rpms, key);
      repoDir = makeRepo(join(work, 'repo'), rpms);
      pkgmgrSize = statSync(join(repoDir, 'Packages', 'pkgmgr-4.2-1.noarch.rpm')).size;
      ({ url: upstream, server } = await serveDirectory(repoDir, 'os'));
    });

    after(() => {
      server?.close();
      box.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    /** One bootstrap of the fixture's package manager through a proxy with these faults, into a new root. */
    async function bootstrapThrough(rules: FaultRule[], o: { root?: string; cache?: string } = {}) {
      runs++;
      const proxy = await faultyMirror(upstream, rules);
      const root = o.root ?? join(work, `root-${runs}`);
      mkdirSync(root, { recursive: true });
      box.env.VMSTUB_CACHE = o.cache ?? mkdtempSync(join(work, 'cache-'));
      try {
        const r = await box.runAsync(
          ['rpm-bootstrap', '--repo', proxy.url, '--root', root, '--key', key.publicKey, 'pkgmgr', 'shell'],
          { timeoutMs: 180_000 },
        );
        return { r, root, log: proxy.log };
      } finally {
        await proxy.close();
      }
    }

    const oneLine = (stderr: string) =>
      stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('vmstub:'));

    it('a package cut off part way is fetched again from where it stopped, not from zero', async () => {
      const { r, root, log } = await bootstrapThrough([
        { match: /pkgmgr-4\.2-1\.noarch\.rpm$/, fault: { kind: 'drop', afterBytes: 1500 }, times: 2 },
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(installedIn(root), EXPECTED);
      const served = log.filter((l) => l.path.endsWith('pkgmgr-4.2-1.noarch.rpm'));
      assert.deepEqual(
        served.map((s) => [s.status, s.range ?? '']),
        [
          [200, ''],
          [206, 'bytes=1500-'],
          [206, 'bytes=3000-'],
        ],
      );
      assert.equal(
        served.reduce((n, s) => n + s.bytes, 0),
        pkgmgrSize,
        'every byte of the package crossed the network once',
      );
    });

    it('a body shorter than its Content-Length is resumed too', async () => {
      const { r, root, log } = await bootstrapThrough([
        { match: /libfoo-2\.5-1\.noarch\.rpm$/, fault: { kind: 'truncate', bytes: 700 }, times: 1 },
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(installedIn(root), EXPECTED);
      assert.ok(log.some((l) => l.path.endsWith('libfoo-2.5-1.noarch.rpm') && l.range === 'bytes=700-'));
    });

    it('500s for the repository index are retried', async () => {
      const { r, root, log } = await bootstrapThrough([
        { match: /repomd\.xml$/, fault: { kind: 'status', code: 500 }, times: 2 },
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(installedIn(root), EXPECTED);
      assert.equal(log.filter((l) => l.path.endsWith('repomd.xml') && l.status === 500).length, 2);
    });

    it('a stalled connection that is then reset is retried', async () => {
      const { r, root } = await bootstrapThrough([
        { match: /primary\.xml/, fault: { kind: 'stall', ms: 1500 }, times: 1 },
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(installedIn(root), EXPECTED);
    });

    it('a corrupt package is refused by its checksum, nothing is installed, and a clean run then works', async () => {
      const { r, root } = await bootstrapThrough([
        { match: /shell-1\.36-1\.noarch\.rpm$/, fault: { kind: 'corrupt' }, times: Infinity },
      ]);
      assert.equal(r.code, 1, r.stderr);
      const lines = oneLine(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /shell-1\.36-1\.noarch\.rpm: sha256 is [0-9a-f]+, the repository says [0-9a-f]+/,
      );
      assert.deepEqual(readdirSync(root), [], 'nothing written into the root');
      const again = await bootstrapThrough([], { root });
      assert.equal(again.r.code, 0, again.r.stderr);
      assert.deepEqual(installedIn(root), EXPECTED);
    });

    it('a mirror that is down: one line naming it, exit 1, nothing installed', async () => {
      runs++;
      const root = join(work, 'root-down');
      mkdirSync(root);
      box.env.VMSTUB_CACHE = mkdtempSync(join(work, 'cache-'));
      const r = await box.runAsync(
        [
          'rpm-bootstrap',
          '--repo',
          'http://127.0.0.1:9/os',
          '--root',
          root,
          '--key',
          key.publicKey,
          'pkgmgr',
        ],
        { timeoutMs: 180_000 },
      );
      assert.equal(r.code, 1, r.stderr);
      const lines = oneLine(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /127\.0\.0\.1:9/);
      assert.deepEqual(readdirSync(root), []);
    });

    it("the host's cache directory full: one line, nothing installed; with room again it works", async () => {
      const small = join(work, 'small-cache');
      mkdirSync(small);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
      try {
        const { r, root } = await bootstrapThrough([], { cache: small });
        assert.equal(r.code, 1, r.stderr);
        const lines = oneLine(r.stderr);
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /ENOSPC|no space left/i);
        assert.deepEqual(readdirSync(root), []);
        const again = await bootstrapThrough([], { root });
        assert.equal(again.r.code, 0, again.r.stderr);
        assert.deepEqual(installedIn(root), EXPECTED);
      } finally {
        execFileSync('umount', [small]);
      }
      assert.ok(!existsSync(join(small, 'rpm-bootstrap')));
    });
  },
);
