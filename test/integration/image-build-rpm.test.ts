/**
 * vmstub image build for the RPM family: a CentOS Stream 9 image from the EL fixture (Debian 12's
 * binaries as signed RPMs, test/helpers/el-fixture.ts), its root bootstrapped as the installer
 * bootstraps the family (vmstub's RPM bootstrap and the target's own dnf, run with the stub's tools on
 * the host), then the image builder's own stages. Its system image booted by vmstub run and its ISO by
 * plain QEMU from an IDE CD drive, each to the login prompt: the fixture's kernel is Debian's cloud
 * kernel, which has no driver for a SATA CD drive or a USB stick (a real EL kernel has both; never
 * booted here).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findDistro } from '../../src/catalog/index.js';
import type { RpmDistro } from '../../src/catalog/types.js';
import { Sandbox, mountsUnder } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { recipeFixture } from '../helpers/el-create.js';
import type { ElFixture } from '../helpers/el-fixture.js';
import { isRoot } from '../helpers/fixture.js';
import { writeConfig, writeHook } from '../helpers/image-config.js';
import { bootToLogin, DRIVE_SEEN } from '../helpers/plain-boot.js';
import { useStub } from '../helpers/stub.js';

const BUILD_TIMEOUT = 30 * 60 * 1000;
const BOOT = 300_000;
const distro = findDistro('centos9stream') as RpmDistro;

const unsquash = (image: string, path: string) =>
  spawnSync('unsquashfs', ['-cat', image, path], { encoding: 'utf8' }).stdout;

describe(
  `an image of ${distro.name} (fixture of Debian 12 binaries as RPMs)`,
  {
    skip: !isRoot && 'image builds as root',
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmstub-image-rpm-'));
    const out = join(dir, 'out');
    const box = new Sandbox();
    let fixture: ElFixture;
    let server: Server | undefined;
    let url = '';
    before(async () => {
      useStub(box);
      box.env.VMSTUB_CACHE = join(box.home, 'cache');
      fixture = recipeFixture(distro);
      ({ server, url } = await serveDirectory(fixture.mirror, distro.releasever));
      writeHook(dir, 'hook.sh', 'VMSTUB-HOOK-EL');
    });
    after(() => {
      server?.close();
      box.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    test(
      'builds a system image and a live ISO, the root bootstrapped with the stub’s rpm and the target’s dnf',
      {
        timeout: BUILD_TIMEOUT,
      },
      async () => {
        const config = writeConfig(
          dir,
          'el.yaml',
          'elimg',
          'hook.sh',
          ['system', 'iso'],
          ['less'],
          [`mirror: ${url}`, `finalMirror: ${url}`, `keyring: ${fixture.key.publicKey}`],
          distro.id,
        );
        // Not box.run: this process serves the mirror.
        const r = await box.runAsync(['image', 'build', config, '--out', out, '--json'], {
          timeoutMs: BUILD_TIMEOUT,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(readdirSync(out).sort(), [
          'elimg.initrd',
          'elimg.iso',
          'elimg.squashfs',
          'elimg.vmlinuz',
        ]);
        assert.deepEqual(mountsUnder(box.home), [], "nothing of the stub's root is left mounted");
        const squashfs = join(out, 'elimg.squashfs');
        assert.match(unsquash(squashfs, 'etc/issue'), /VMSTUB-HOOK-EL/);
        assert.match(unsquash(squashfs, 'usr/lib/os-release'), /^ID="?centos/m, 'the release package');
        const packages = spawnSync('unsquashfs', ['-l', squashfs, 'var/lib/rpm'], {
          encoding: 'utf8',
        }).stdout;
        assert.match(packages, /rpmdb\.sqlite/, "the target's rpm database, where EL keeps it");
        assert.match(unsquash(squashfs, 'etc/group'), /^wheel:x:\d+:alice$/m, 'sudo through wheel, as on EL');
        assert.match(unsquash(squashfs, 'etc/shadow'), /^root:[!*]/m, 'root is locked');
        assert.equal(unsquash(squashfs, 'etc/machine-id'), '', 'a machine-id of its own on every boot');
        assert.equal(unsquash(squashfs, 'etc/kernel/cmdline'), '', "no installed system's kernel arguments");
        assert.match(
          unsquash(squashfs, 'etc/NetworkManager/system-connections/vmstub-ethernet.nmconnection'),
          /method=auto/,
        );
        assert.match(unsquash(squashfs, 'etc/yum.repos.d/vmstub.repo'), new RegExp(`baseurl=${url}/`));
        const repos = spawnSync('unsquashfs', ['-l', squashfs, 'etc/yum.repos.d'], {
          encoding: 'utf8',
        }).stdout;
        assert.match(
          repos,
          /centos\.repo\.vmstub-disabled$/m,
          "the release's own set aside for the final mirror",
        );
        assert.doesNotMatch(repos, /centos\.repo$/m);
        const ssh = spawnSync('unsquashfs', ['-l', squashfs, 'etc/ssh'], { encoding: 'utf8' }).stdout;
        assert.doesNotMatch(ssh, /ssh_host_.*_key/, 'no SSH host keys: each system makes its own');
        const boot = spawnSync('unsquashfs', ['-l', squashfs, 'boot'], { encoding: 'utf8' }).stdout;
        assert.match(boot, /boot\/vmlinuz-/);
      },
    );

    test(
      'its system image (vmstub run) and its ISO (plain QEMU, an IDE CD drive) boot to the login prompt',
      {
        timeout: BOOT + 60_000,
      },
      async () => {
        const r = box.run(['run', '--detach', '--name', 'el-system', join(out, 'elimg.squashfs')]);
        assert.equal(r.code, 0, r.stderr);
        try {
          const [, iso] = await Promise.all([
            box
              .waitForConsole('el-system', 'the system image to log in', 'VMSTUB-HOOK-EL', BOOT)
              .then(() => box.waitForConsole('el-system', 'its login prompt', 'elimg login:', 60_000)),
            bootToLogin(join(out, 'elimg.iso'), 'ide-cd', 'seabios', dir, BOOT),
          ]);
          assert.match(iso, DRIVE_SEEN['ide-cd']);
          assert.match(iso, /root=live:CDLABEL=ELIMG/);
          assert.match(iso, /VMSTUB-HOOK-EL/, "the hook's login banner");
        } finally {
          box.run(['stop', '--force', 'el-system']);
        }
      },
    );
  },
);
