/**
 * Ubuntu installs against a fixture mirror on loopback (these machines cannot reach Ubuntu's archive):
 * `vmstub install ubuntu2404 --target-dir` runs the real installer with the host's mmdebstrap, apt and
 * gpgv. The mirror carries Debian 12 packages under noble's suite names and a stand-in
 * linux-image-virtual that pulls in Debian's cloud kernel, so what is checked is vmstub's part: sources,
 * signatures, netplan, accounts, host keys, the kernel where the handoff looks, and a clean failure.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findInstalledKernel } from '../../src/boot/discover.js';
import { mountsUnder, Sandbox } from '../helpers/cli.js';
import { recordEvidence } from '../helpers/evidence.js';
import type { FixtureMirror } from '../helpers/deb-mirror.js';
import {
  assertPlainDpkg,
  UBUNTU as distro,
  ubuntuFixtureMirror,
  ubuntuInstallArgs,
} from '../helpers/ubuntu-fixture.js';
import { isRoot } from '../helpers/fixture.js';

const execFileAsync = promisify(execFile);

describe(
  'vmstub install ubuntu2404 --target-dir (fixture mirror)',
  { skip: !isRoot && 'needs root (chroot, mounts)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-ubuntu-'));
    const sandbox = new Sandbox();
    let mirror: FixtureMirror;
    let url = '';
    let server: Server | undefined;
    let requests: string[] = [];
    const keyFile = join(work, 'id_ed25519');
    let testKey = '';

    before(async () => {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test@vmstub', '-f', keyFile]);
      testKey = readFileSync(`${keyFile}.pub`, 'utf8').trim();
      ({ mirror, url, server, requests } = await ubuntuFixtureMirror(work));
    });

    after(() => {
      server?.close();
      for (const m of mountsUnder(work)) execFileSync('umount', ['-l', m]);
      rmSync(work, { recursive: true, force: true });
      rmSync(sandbox.home, { recursive: true, force: true });
    });

    const installFrom = (mirrorUrl: string, target: string, keyring: string, extra: string[] = []) =>
      sandbox.runAsync([...ubuntuInstallArgs(target, mirrorUrl, keyring), ...extra], { timeoutMs: 900_000 });
    const install = (target: string, keyring: string, extra: string[] = []) =>
      installFrom(url, target, keyring, extra);

    it('refuses a mirror signed by another key, with one error line and nothing left mounted', async () => {
      const target = join(work, 'wrong-key');
      mkdirSync(target);
      const r = await install(target, mirror.wrongKeyring);
      assert.notEqual(r.code, 0);
      assert.match(r.stdout + r.stderr, /install FAILED at step bootstrap/);
      assert.deepEqual(mountsUnder(target), []);
    });

    it('installs a bootable, configured system from the mirror', async () => {
      const target = join(work, 'noble');
      mkdirSync(target);
      const r = await install(target, mirror.keyring, [
        '--hostname',
        'noble-fixture',
        '--timezone',
        'Asia/Tokyo',
        '--ssh-key',
        `${keyFile}.pub`,
        '--user',
        'alice',
        '--locale',
        'de_DE.UTF-8',
      ]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.ok(
        requests.some((p) => p.endsWith(`/dists/${distro.suite}/InRelease`)),
        'fetched the signed release file',
      );
      assert.deepEqual(mountsUnder(target), [], 'the installer unmounts what it mounted');

      const read = (p: string) => readFileSync(join(target, p), 'utf8');
      // apt: the mirror's three suites, verified by the keyring the spec brought, copied into the system
      const sources = read('etc/apt/sources.list.d/ubuntu.sources');
      assert.match(
        sources,
        new RegExp(
          `URIs: ${url}\\nSuites: ${distro.suite} ${distro.updatesSuite}\\nComponents: main universe`,
        ),
      );
      assert.match(sources, new RegExp(`Suites: ${distro.securitySuite}`));
      assert.match(sources, /Signed-By: \/etc\/apt\/keyrings\/vmstub-mirror\.gpg/);
      assert.deepEqual(
        readFileSync(join(target, 'etc/apt/keyrings/vmstub-mirror.gpg')),
        readFileSync(mirror.keyring),
      );
      // ... and the installed system's apt trusts and reads it (async: this process serves the mirror)
      await execFileAsync('chroot', [target, 'apt-get', '-q', 'update']);
      const policy = execFileSync('chroot', [target, 'apt-cache', 'policy', 'linux-image-virtual'], {
        encoding: 'utf8',
      });
      assert.match(policy, /Installed: 99\.0-vmstub1/);

      // system identity
      assert.equal(read('etc/hostname'), 'noble-fixture\n');
      assert.match(read('etc/hosts'), /127\.0\.1\.1\tnoble-fixture/);
      assert.equal(readFileSync(join(target, 'etc/timezone'), 'utf8'), 'Asia/Tokyo\n');
      assert.match(
        execFileSync('readlink', [join(target, 'etc/localtime')], { encoding: 'utf8' }),
        /zoneinfo\/Asia\/Tokyo/,
      );
      assert.match(read('etc/default/locale'), /LANG=de_DE\.UTF-8/);
      assert.match(execFileSync('chroot', [target, 'locale', '-a'], { encoding: 'utf8' }), /de_DE\.utf8/);
      assert.equal(read('etc/machine-id'), '', 'machine-id is made on first boot');

      // network: netplan, which netplan itself accepts
      assert.match(read('etc/netplan/50-vmstub.yaml'), /dhcp4: true/);
      assert.equal(statSync(join(target, 'etc/netplan/50-vmstub.yaml')).mode & 0o777, 0o600);
      execFileSync('chroot', [target, 'netplan', 'generate'], { stdio: 'pipe' });
      assert.equal(
        execFileSync(
          'systemctl',
          [`--root=${target}`, 'is-enabled', 'systemd-networkd.service', 'systemd-resolved.service'],
          { encoding: 'utf8' },
        ).trim(),
        'enabled\nenabled',
      );

      // accounts: root locked, keys authorized, alice with sudo
      const shadow = read('etc/shadow');
      assert.match(shadow, /^root:[!*]/m, 'root has no usable password');
      assert.doesNotMatch(shadow, /^[^:]+::/m, 'no account has an empty password');
      assert.equal(read('root/.ssh/authorized_keys').trim(), testKey);
      assert.equal(read('home/alice/.ssh/authorized_keys').trim(), testKey);
      assert.match(read('etc/group'), /^sudo:x:\d+:alice$/m);
      const aliceUid = Number(/^alice:x:(\d+):/m.exec(read('etc/passwd'))![1]);
      assert.equal(statSync(join(target, 'home/alice/.ssh/authorized_keys')).uid, aliceUid);

      // SSH: host keys of its own, the server enabled
      const hostKeys = readdirSync(join(target, 'etc/ssh')).filter((f) => /^ssh_host_.*_key\.pub$/.test(f));
      assert.ok(hostKeys.includes('ssh_host_ed25519_key.pub'), hostKeys.join(' '));
      assert.equal(
        execFileSync('systemctl', [`--root=${target}`, 'is-enabled', 'ssh.service'], {
          encoding: 'utf8',
        }).trim(),
        'enabled',
      );

      assertPlainDpkg(target);
      assert.ok(!existsSync(join(target, 'usr/bin/eatmydata')), "the bootstrap's eatmydata is gone");

      // boot: the kernel and a slim initramfs where the handoff looks for them
      const found = findInstalledKernel(target);
      assert.ok(found, 'the handoff finds a kernel');
      assert.match(found.version ?? '', /cloud-amd64$/);
      assert.ok(found.initrds[0]?.startsWith(target), found.initrds.join(' '));
      assert.match(read('etc/initramfs-tools/conf.d/vmstub.conf'), /MODULES=list/);
      const initramfs = execFileSync(
        'chroot',
        [target, 'sh', '-c', `lsinitramfs ${found.initrds[0]!.slice(target.length)} | grep -c '[.]ko'`],
        { encoding: 'utf8' },
      );
      assert.ok(Number(initramfs) < 60, `slim initramfs: ${initramfs.trim()} modules`);
      recordEvidence(import.meta.url, [
        {
          distro: 'ubuntu2404',
          source: 'fixture-binaries',
          reached: 'install',
          what: "Debian 12's packages under noble's suite names",
        },
      ]);
    });
  },
);
