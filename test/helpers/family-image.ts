/**
 * The test of vmstub image build for a family whose root the installer's own steps bootstrap, from its
 * fixture of Debian 12's binaries: CentOS Stream 9 (as signed RPMs, test/helpers/el-fixture.ts: vmstub's
 * RPM bootstrap and the target's own dnf) and Gentoo (as a signed systemd stage3,
 * test/helpers/gentoo-fixture.ts: the stage3 verified and unpacked, emerge's stand-in), run with the
 * stub's tools on the host; then the image builder's own stages. Each image's system image is booted by
 * vmstub run and its ISO by plain QEMU from an IDE CD drive, each to the login prompt: the fixtures'
 * kernel is Debian's cloud kernel, which has no driver for a SATA CD drive or a USB stick (a real EL or
 * Gentoo kernel has both; never booted here).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findDistro } from '../../src/catalog/index.js';
import type { GentooDistro, RpmDistro } from '../../src/catalog/types.js';
import { Sandbox, assertNothingLeft, mountsUnder } from './cli.js';
import { serveDirectory } from './deb-mirror.js';
import { recipeFixture } from './el-create.js';
import { gentooFixture } from './gentoo-fixture.js';
import { isRoot } from './fixture.js';
import { writeConfig, writeHook } from './image-config.js';
import { bootToLogin, DRIVE_SEEN } from './plain-boot.js';
import { useStub } from './stub.js';

const BUILD_TIMEOUT = 30 * 60 * 1000;
const BOOT = 300_000;

const unsquash = (image: string, path: string) =>
  spawnSync('unsquashfs', ['-cat', image, path], { encoding: 'utf8' }).stdout;
const list = (image: string, path: string) =>
  spawnSync('unsquashfs', ['-l', image, path], { encoding: 'utf8' }).stdout;

/** A key that signs nothing of the fixtures': Debian's archive key. */
const OTHER_KEY = '/usr/share/keyrings/debian-archive-keyring.gpg';

export interface FamilyCase {
  /** The install step that checks the signatures, as a failure names it. */
  failedStep: string;
  distro: string;
  name: string;
  /** Builds (or finds cached) the fixture: the tree to serve, its URL prefix, the key that signs it. */
  fixture: () => { mirror: string; prefix: string; key: string };
  /** What only this family's image has. */
  check: (squashfs: string, url: string) => void;
}

export const EL_IMAGE: FamilyCase = {
  failedStep: 'bootstrap',
  distro: 'centos9stream',
  name: 'elimg',
  fixture: () => {
    const d = findDistro('centos9stream') as RpmDistro;
    const f = recipeFixture(d);
    return { mirror: f.mirror, prefix: d.releasever, key: f.key.publicKey };
  },
  check: (squashfs, url) => {
    assert.match(unsquash(squashfs, 'usr/lib/os-release'), /^ID="?centos/m, 'the release package');
    assert.match(
      list(squashfs, 'var/lib/rpm'),
      /rpmdb\.sqlite/,
      "the target's rpm database, where EL keeps it",
    );
    assert.match(
      unsquash(squashfs, 'etc/NetworkManager/system-connections/vmstub-ethernet.nmconnection'),
      /method=auto/,
    );
    const repo = unsquash(squashfs, 'etc/yum.repos.d/vmstub.repo');
    assert.match(repo, new RegExp(`baseurl=${url}/`));
    assert.match(
      repo,
      /^gpgcheck=1\ngpgkey=file:\/\/\/etc\/pki\/rpm-gpg\/RPM-GPG-KEY-vmstub-1$/m,
      'the keyring kept for the repositories',
    );
    assert.match(unsquash(squashfs, 'etc/pki/rpm-gpg/RPM-GPG-KEY-vmstub-1'), /BEGIN PGP PUBLIC KEY BLOCK/);
    const repos = list(squashfs, 'etc/yum.repos.d');
    assert.match(
      repos,
      /centos\.repo\.vmstub-disabled$/m,
      "the release's own set aside for the final mirror",
    );
    assert.doesNotMatch(repos, /centos\.repo$/m);
  },
};

export const GENTOO_IMAGE: FamilyCase = {
  failedStep: 'stage3',
  distro: 'gentoo',
  name: 'gentooimg',
  fixture: () => {
    const f = gentooFixture(findDistro('gentoo') as GentooDistro);
    return { mirror: f.mirror, prefix: 'gentoo', key: f.key.publicKey };
  },
  check: (squashfs, url) => {
    assert.match(unsquash(squashfs, 'usr/lib/os-release'), /^ID=gentoo$/m, 'the stage3');
    assert.match(
      unsquash(squashfs, 'var/log/vmstub-fixture-portage.log'),
      /^emerge --getbinpkg --noreplace --quiet-build=y .*sys-kernel\/dracut/m,
      "the kernel and the live ISO's dracut by emerge",
    );
    assert.match(unsquash(squashfs, 'etc/systemd/network/80-vmstub-ethernet.network'), /DHCP=yes/);
    assert.match(
      unsquash(squashfs, 'etc/portage/make.conf'),
      new RegExp(`^GENTOO_MIRRORS="${url}"$`, 'm'),
      'the final mirror, once',
    );
    assert.equal(unsquash(squashfs, 'etc/portage/make.conf').match(/GENTOO_MIRRORS/g)?.length, 1);
  },
};

export const describeFamilyImage = (c: FamilyCase) =>
  describe(
    `an image of ${c.distro} (its fixture of Debian 12 binaries)`,
    {
      skip: !isRoot && 'image builds as root',
    },
    () => {
      const dir = mkdtempSync(join(tmpdir(), `vmstub-image-${c.distro}-`));
      const out = join(dir, 'out');
      const marker = `VMSTUB-HOOK-${c.distro.toUpperCase()}`;
      const box = new Sandbox();
      let server: Server | undefined;
      let url = '';
      let config = '';
      before(async () => {
        useStub(box);
        box.env.VMSTUB_CACHE = join(box.home, 'cache');
        const f = c.fixture();
        ({ server, url } = await serveDirectory(f.mirror, f.prefix));
        writeHook(dir, 'hook.sh', marker);
        config = writeConfig(
          dir,
          `${c.name}.yaml`,
          c.name,
          'hook.sh',
          ['system', 'iso'],
          ['less'],
          [`mirror: ${url}`, `finalMirror: ${url}`, `keyring: ${f.key}`],
          c.distro,
        );
      });
      after(() => {
        server?.close();
        box.cleanup();
        rmSync(dir, { recursive: true, force: true });
      });

      test(
        "signed by another key: the installer's step refuses it in the stub's root, one line naming the step, nothing left",
        { timeout: BUILD_TIMEOUT },
        async () => {
          const cache = join(box.home, 'cache');
          const wrong = join(dir, 'wrong.yaml');
          writeFileSync(
            wrong,
            readFileSync(config, 'utf8').replace(/^keyring: .*$/m, `keyring: ${OTHER_KEY}`),
          );
          const r = await box.runAsync(['image', 'build', wrong, '--out', out], { timeoutMs: BUILD_TIMEOUT });
          assert.equal(r.code, 1, r.stderr);
          assert.match(
            r.stderr.trim().split('\n').pop()!,
            new RegExp(`^vmstub: ${c.failedStep}: .* \\(log: \\S+\\.log\\)$`),
          );
          await assertNothingLeft(cache, `${c.distro} image build refused`);
          assert.deepEqual(readdirSync(join(cache, 'stub-root')), [], "the stub's root is gone");
          assert.ok(!existsSync(out) || readdirSync(out).length === 0, 'nothing delivered');
        },
      );

      test(
        "SIGTERM while the installer's steps run in the stub's root: nothing mounted, running or half-built is left",
        { timeout: BUILD_TIMEOUT },
        async () => {
          const cache = join(box.home, 'cache');
          const r = await box.runAndKill(
            ['image', 'build', config, '--out', out],
            /bootstrap: (Bootstrap|Unpack) /,
            'SIGTERM',
            { delayMs: 2000, timeoutMs: BUILD_TIMEOUT },
          );
          assert.equal(r.code, 143, r.stderr);
          assert.match(
            r.stderr,
            /interrupted by SIGTERM; undoing: .*the stub's root under /,
            'it was in there',
          );
          await assertNothingLeft(cache, `${c.distro} image build, SIGTERM in the stub's root`);
          assert.deepEqual(readdirSync(join(cache, 'stub-root')), [], "the stub's root is gone");
          assert.deepEqual(
            readdirSync(join(cache, 'images')).filter((f) => f.startsWith('.')),
            [],
            'no half-built stage, no lock',
          );
          const loops = spawnSync('losetup', ['--list', '--noheadings', '--output', 'BACK-FILE'], {
            encoding: 'utf8',
          }).stdout;
          assert.doesNotMatch(loops, /stub-x86_64\.squashfs/, 'the loop device of the stub is detached');
        },
      );

      test(
        "builds a system image and a live ISO, the root bootstrapped by the installer's steps with the stub's tools",
        {
          timeout: BUILD_TIMEOUT,
        },
        async () => {
          // Not box.run: this process serves the mirror.
          const r = await box.runAsync(['image', 'build', config, '--out', out, '--json'], {
            timeoutMs: BUILD_TIMEOUT,
          });
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(
            readdirSync(out).sort(),
            ['initrd', 'iso', 'squashfs', 'vmlinuz'].map((ext) => `${c.name}.${ext}`),
          );
          assert.deepEqual(mountsUnder(box.home), [], "nothing of the stub's root is left mounted");
          const squashfs = join(out, `${c.name}.squashfs`);
          assert.match(unsquash(squashfs, 'etc/issue'), new RegExp(marker));
          assert.match(unsquash(squashfs, 'etc/group'), /^wheel:x:\d+:alice$/m, 'sudo through wheel');
          assert.match(unsquash(squashfs, 'etc/shadow'), /^root:[!*]/m, 'root is locked');
          assert.equal(unsquash(squashfs, 'etc/machine-id'), '', 'a machine-id of its own on every boot');
          assert.equal(
            unsquash(squashfs, 'etc/kernel/cmdline'),
            '',
            "no installed system's kernel arguments",
          );
          assert.doesNotMatch(
            list(squashfs, 'etc/ssh'),
            /ssh_host_.*_key/,
            'no SSH host keys: each system makes its own',
          );
          assert.match(list(squashfs, 'boot'), /boot\/vmlinuz-/);
          c.check(squashfs, url);
          const explain = await box.runAsync(['image', 'build', config, '--explain']);
          assert.equal(explain.code, 0, explain.stderr);
          assert.match(
            explain.stdout,
            /^bootstrap: hit /m,
            "cached by the recipe, the mirror's index and the stub's tool versions",
          );
        },
      );

      test(
        'its system image (vmstub run) and its ISO (plain QEMU, an IDE CD drive) boot to the login prompt',
        {
          timeout: BOOT + 60_000,
        },
        async () => {
          const vm = `${c.name}-system`;
          const r = box.run(['run', '--detach', '--name', vm, join(out, `${c.name}.squashfs`)]);
          assert.equal(r.code, 0, r.stderr);
          try {
            const [, iso] = await Promise.all([
              box
                .waitForConsole(vm, 'the system image to log in', marker, BOOT)
                .then(() => box.waitForConsole(vm, 'its login prompt', `${c.name} login:`, 60_000)),
              bootToLogin(join(out, `${c.name}.iso`), 'ide-cd', 'seabios', dir, BOOT),
            ]);
            assert.match(iso, DRIVE_SEEN['ide-cd']);
            assert.match(iso, new RegExp(`root=live:CDLABEL=${c.name.toUpperCase()}`));
            assert.match(iso, new RegExp(marker), "the hook's login banner");
          } finally {
            box.run(['stop', '--force', vm]);
          }
        },
      );
    },
  );
