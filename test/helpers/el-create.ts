/**
 * The tests of `vmstub create` for an RPM recipe against its fixture of Debian's binaries (el-fixture.ts):
 * pass 1 by vmstub's RPM bootstrap in the stub, pass 2 by the target's own dnf or dnf5, dracut and the boot
 * entry by the kernel's own scriptlet, the handoff into the EL-style /boot, the first boot with
 * NetworkManager, SSH; then a stop and a start through the handoff.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { RpmDistro } from '../../src/catalog/types.js';
import { IMAGE_PACKAGES } from '../../src/image/planned-family.js';
import { firstPassPackages, systemPackages } from '../../src/installer/plan/rpm.js';
import { resolveSpec } from '../../src/installer/spec.js';
import { assertBootsAgain, Sandbox } from './cli.js';
import { serveDirectory } from './deb-mirror.js';
import { debianSuiteFor, elFixture, type ElFixture } from './el-fixture.js';
import { useStub } from './stub.js';

const MINUTES = 60_000;

/** Everything both passes of the recipe install, with the locale the tests install (C.UTF-8). */
export function recipePackages(distro: RpmDistro): string[] {
  const probe = resolveSpec(
    { distro: distro.id, locale: 'C.UTF-8' },
    { hostname: distro.id, timezone: 'UTC', sshKeys: [], arch: 'x86_64' },
  );
  return [...firstPassPackages(distro), ...systemPackages(distro, probe)];
}

/**
 * The recipe's fixture of real binaries (el-fixture.ts), built or found in the test cache: what both
 * passes install, and what an image of the release adds (vmstub image build), so one fixture serves both.
 */
export const recipeFixture = (distro: RpmDistro): ElFixture =>
  elFixture({
    distro,
    packages: [...new Set([...recipePackages(distro), ...IMAGE_PACKAGES.rpm])],
  });

export function describeElCreate(
  distro: RpmDistro,
  o: {
    /** Records what the two tests showed; called once both have passed (in the test file: evidence.test.ts reads it). */
    shown: () => void;
    /** Let the release package bring the keys, as the catalog says for this entry (no --keyring). */
    keysFromRelease?: boolean;
  },
): void {
  const name = distro.id;
  describe(`vmstub create --distro ${distro.id} (fixture of ${debianSuiteFor(distro).name} binaries as RPMs)`, () => {
    const box = new Sandbox();
    const ssh = (...command: string[]) => box.sshRoot(name, command);
    let fixture: ElFixture;
    let server: Server | undefined;
    let url = '';
    before(async () => {
      useStub(box);
      fixture = recipeFixture(distro);
      ({ server, url } = await serveDirectory(fixture.mirror, distro.releasever));
    });
    after(() => {
      server?.close();
      box.cleanup();
    });
    /** Set when the first test passed whole: the second builds on it, and only then records evidence. */
    let installed = false;

    it(
      'installs in two passes, boots the EL-style kernel and logs in over SSH',
      { timeout: 40 * MINUTES },
      async () => {
        const keys = o.keysFromRelease ? [] : ['--keyring', fixture.key.publicKey];
        const r = await box.runAsync(
          [
            'create',
            name,
            '--distro',
            distro.id,
            '--mirror',
            url,
            ...keys,
            '--locale',
            'C.UTF-8',
            '--user',
            'alice',
            '--json',
          ],
          { timeoutMs: 40 * MINUTES },
        );
        assert.equal(r.code, 0, `${r.stderr}\n${box.consoleLog(name).split('\n').slice(-40).join('\n')}`);
        const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; phases: object };
        process.stdout.write(
          `# create ${distro.id} to SSH: ${result.seconds} s ${JSON.stringify(result.phases)}\n`,
        );
        // Pass 2 is the target's own dnf, run in the new root: its transaction is in the new system's history.
        if (distro.packageManager === 'dnf5')
          assert.match(ssh('dnf5', 'history', 'list', '--json'), /--releasever=\S+[^"]* install /);
        else assert.match(ssh('dnf', 'history', 'list'), /--releasever=\S+ .*\| Install +\| +\d+/);
        // rpm -q fails for any name not installed.
        ssh(
          'rpm',
          '-q',
          'kernel-core',
          distro.packageManager,
          'NetworkManager',
          'openssh-server',
          distro.releasePackage,
        );
        assert.ok(
          Number(ssh('sh', '-c', "'rpm -qa | wc -l'")) > 200,
          'the whole system is in the rpm database',
        );
        assert.equal(ssh('rpm', '--eval', '%_dbpath').trim(), distro.rpmdb.path);
        // The kernel's %posttrans ran kernel-install: /boot as EL lays it out, the entry with our arguments.
        const v = fixture.kernelVersion;
        assert.equal(ssh('uname', '-r').trim(), v);
        assert.equal(
          ssh('ls', '/boot')
            .split('\n')
            .filter((f) => f.includes(v))
            .sort()
            .join(' '),
          `initramfs-${v}.img vmlinuz-${v}`,
        );
        const entry = ssh('sh', '-c', `'cat /boot/loader/entries/*-${v}.conf'`);
        assert.match(entry, /^options root=UUID=[0-9a-f-]+ rootfstype=xfs ro$/m, entry);
        // The handoff took the kernel from the Boot Loader Specification entry the scriptlet wrote.
        assert.match(box.consoleLog(name), /vmstub-handoff: found \S+ \(bls\)/);
        assert.equal(ssh('hostname').trim(), name);
        assert.equal(ssh('systemctl', 'is-active', 'NetworkManager', 'sshd').trim(), 'active\nactive');
        assert.equal(ssh('sudo', '-n', '-u', 'alice', 'sudo', '-n', 'id', '-u').trim(), '0');
        assert.match(ssh('id', '-Gn', 'alice'), /\bwheel\b/);
        installed = true;
      },
    );

    it('boots again through the handoff after stop and start', { timeout: 15 * MINUTES }, () => {
      assert.ok(installed, 'the install to SSH passed');
      assertBootsAgain(box, name);
      o.shown();
    });
  });
}

/** What the fixture is, in the evidence `vmstub distros` shows. */
export const EL_FIXTURE_WHAT = (d: RpmDistro) => {
  const debian = debianSuiteFor(d).name;
  return `${debian}'s binaries as RPMs under ${d.name}'s names, signed; pass 2 by ${debian}'s ${d.packageManager} in the target`;
};
