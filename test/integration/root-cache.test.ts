/**
 * The root filesystem create bootstraps on the host, for real: mmdebstrap from Debian's mirror (through
 * a loopback mirror that passes deb.debian.org on, so the test can take it away), what is kept and what
 * is stripped, a cache hit, a damaged cache entry, the mirror gone, and a full disk.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StageCache } from '../../src/image/stage-cache.js';
import { cachedRoot, NOT_CACHED } from '../../src/installer/root-cache.js';
import { resolveSpec, type SpecInput } from '../../src/installer/spec.js';
import { faultyMirror, RELEASE_FILES, type FaultyMirror } from '../helpers/fault-proxy.js';
import { isRoot } from '../helpers/fixture.js';

const defaults = { hostname: 'web1', timezone: 'UTC', sshKeys: [], arch: 'x86_64' as const };

describe(
  'a root filesystem bootstrapped on the host (real mirror)',
  { skip: !isRoot && 'needs root' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-root-cache-'));
    const cache = new StageCache(join(work, 'roots'));
    let mirror: FaultyMirror;
    const spec = (input: SpecInput = {}) =>
      resolveSpec(
        {
          distro: 'debian12',
          mirror: `${mirror.url}/debian`,
          securityMirror: `${mirror.url}/debian-security`,
          ...input,
        },
        defaults,
      );
    const notes: string[] = [];
    const get = (input: SpecInput = {}, fresh = false) =>
      cachedRoot(spec(input), { cache, fresh, note: (l) => notes.push(l) });
    const tarList = (tarball: string) =>
      execFileSync('tar', ['-tf', tarball], { maxBuffer: 1 << 28 }).toString();

    before(async () => {
      // The Release files as first fetched: a mirror update between two gets must not undo the expected hit.
      mirror = await faultyMirror('http://deb.debian.org/', [], { freeze: RELEASE_FILES });
    });
    after(async () => {
      await mirror.close();
      rmSync(work, { recursive: true, force: true });
    });

    it(
      'is bootstrapped once: the packages asked for, no machine identity, a gzip initramfs',
      { timeout: 600_000 },
      async () => {
        const r = await get();
        assert.equal(r.hit, false);
        assert.ok(
          notes.some((n) => /bootstrapping Debian 12 \(bookworm\) on the host/.test(n)),
          notes.join('\n'),
        );
        for (const p of ['openssh-server', 'linux-image-cloud-amd64', 'systemd-sysv', 'qemu-guest-agent'])
          assert.ok(r.installed[p], `${p} is installed`);
        const files = tarList(r.tarball);
        assert.match(files, /^\.\/usr\/sbin\/sshd$/m);
        assert.match(files, /^\.\/etc\/ssh\/sshd_config$/m);
        for (const path of NOT_CACHED) {
          const re = new RegExp(`^\\.${path.replace(/\./g, '\\.')}$`, 'm');
          assert.doesNotMatch(files, re, `${path} is not in the cached root`);
        }
        assert.doesNotMatch(
          files,
          /\.vmstub-install-unfinished|dpkg\.distrib/,
          'no install marks, eatmydata undone',
        );
        const initrd = /^\.\/boot\/initrd\.img-\S+$/m.exec(files)![0];
        const head = execFileSync('tar', ['-xOf', r.tarball, initrd], { maxBuffer: 1 << 28 }).subarray(0, 2);
        assert.deepEqual([...head], [0x1f, 0x8b], 'the initramfs is gzip (vmstub.conf), not zstd');
        assert.equal(statSync(r.tarball).mode & 0o777, 0o644);
      },
    );

    it(
      'is found again for the same recipe, whatever the host name, users or time zone',
      { timeout: 120_000 },
      async () => {
        notes.length = 0;
        const first = await get();
        const r = await get({ hostname: 'other', timezone: 'Asia/Tokyo', users: [{ name: 'bob' }] });
        assert.equal(r.hit, true);
        assert.equal(r.tarball, first.tarball);
        assert.ok(
          r.explanation.some((l) => /recipe and mirror state match/.test(l)),
          r.explanation.join('\n'),
        );
        assert.ok(!notes.some((n) => /bootstrapping/.test(n)), notes.join('\n'));
      },
    );

    it('a damaged cached root is noticed and bootstrapped again', { timeout: 600_000 }, async () => {
      const { tarball } = await get();
      const fd = openSync(tarball, 'r+');
      writeSync(fd, Buffer.from('X'), 0, 1, 4096 * 10);
      notes.length = 0;
      const r = await get();
      assert.ok(
        notes.some((n) => /is damaged \(sha256 /.test(n)),
        notes.join('\n'),
      );
      assert.equal(r.hit, false);
      execFileSync('tar', ['-tf', r.tarball], { stdio: 'ignore', maxBuffer: 1 << 28 });
    });

    it(
      'with the mirror gone: the cached root of the same recipe, said in a line; a new recipe is refused',
      { timeout: 120_000 },
      async () => {
        const s = spec();
        await mirror.close();
        notes.length = 0;
        const r = await cachedRoot(s, { cache, note: (l) => notes.push(l) });
        assert.equal(r.hit, true);
        assert.ok(
          notes.some((n) => /cannot reach the mirror: using the root cached \d{4}-/.test(n)),
          notes.join('\n'),
        );
        await assert.rejects(
          cachedRoot({ ...s, packages: ['curl'] }, { cache, note: () => {} }),
          /cannot reach http:\/\/127\.0\.0\.1:\d+\/debian \(its InRelease files\), and no root filesystem of this recipe is cached/,
        );
      },
    );

    it('a full disk: one line naming it, nothing left behind', { timeout: 300_000 }, async () => {
      mirror = await faultyMirror('http://deb.debian.org/', []);
      const small = join(work, 'small');
      mkdirSync(small);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', small]);
      try {
        const tiny = new StageCache(join(small, 'roots'));
        await assert.rejects(
          cachedRoot(spec(), { cache: tiny, note: () => {} }),
          /^VmstubError: the disk of .*small\/roots is full \(\d+ MiB free\): .*set VMSTUB_CACHE$/,
        );
        const left = execFileSync('find', [
          join(small, 'roots'),
          '-mindepth',
          '1',
          '-maxdepth',
          '1',
          '!',
          '-name',
          'logs',
        ])
          .toString()
          .trim();
        assert.equal(left, '', 'the half-made root was removed');
        assert.doesNotMatch(
          readFileSync('/proc/self/mountinfo', 'utf8'),
          new RegExp(`${small}/`),
          'nothing mounted inside',
        );
      } finally {
        execFileSync('umount', [small]);
      }
    });
  },
);
