import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findDistro } from '../../src/catalog/index.js';
import { assertBootsAgain, Sandbox } from './cli.js';
import { useStub } from './stub.js';
import type { DebDistro } from '../../src/catalog/types.js';
import {
  buildMirror,
  debianPool,
  debsIn,
  dummyDeb,
  serveDirectory,
  withMoreDepends,
  type FixtureMirror,
} from './deb-mirror.js';

export const UBUNTU = findDistro('ubuntu2404') as DebDistro;
export const STAND_IN_KERNEL = 'linux-image-cloud-amd64';

export interface ServedMirror {
  mirror: FixtureMirror;
  url: string;
  server: Server;
  requests: string[];
}

/**
 * An Ubuntu release's package set (24.04's unless told) as a signed fixture mirror on loopback: Debian
 * 12's packages under the release's suite names, with stand-ins for linux-image-virtual (pulling in
 * Debian's cloud kernel) and ubuntu-keyring. Where the release's systemd carries resolved itself (up to
 * 22.04), Debian's systemd is repacked to depend on Debian's systemd-resolved. With lean, without
 * eatmydata (the bootstrap's speed-up must step aside).
 */
export async function ubuntuFixtureMirror(
  work: string,
  o: { lean?: boolean; distro?: DebDistro } = {},
): Promise<ServedMirror> {
  const distro = o.distro ?? UBUNTU;
  const resolvedInSystemd = !distro.packages.includes('systemd-resolved');
  const packages = [
    ...distro.packages,
    ...(resolvedInSystemd ? ['systemd-resolved'] : []),
    STAND_IN_KERNEL,
    // mmdebstrap's eatmydata hook fetches these from the target's mirror
    'eatmydata',
    'libeatmydata1',
  ];
  const pool = debianPool(packages);
  const extra = join(work, 'extra');
  mkdirSync(extra, { recursive: true });
  const kernel = dummyDeb(extra, distro.kernelPackage.x86_64!, [STAND_IN_KERNEL]);
  const keyring = dummyDeb(extra, 'ubuntu-keyring', ['gpgv']);
  const layout = {
    origin: 'Ubuntu',
    suites: [distro.suite],
    emptySuites: [distro.updatesSuite, distro.securitySuite],
    components: distro.components,
  };
  const debs = debsIn(pool)
    .filter((f) => !o.lean || !/\/(lib)?eatmydata1?_/.test(f))
    .map((f) =>
      resolvedInSystemd && /\/systemd_[^/]*\.deb$/.test(f)
        ? withMoreDepends(extra, f, ['systemd-resolved'])
        : f,
    );
  const dir = o.lean ? join(work, 'lean', 'mirror') : join(work, 'mirror');
  mkdirSync(dirname(dir), { recursive: true });
  const mirror = buildMirror(dir, [...debs, kernel, keyring], layout);
  const served = await serveDirectory(mirror.dir, 'ubuntu');
  return { mirror, ...served };
}

/** The flags that point an install at a fixture mirror signed by keyring (a file on this host). */
const fixtureMirrorArgs = (mirrorUrl: string, keyring: string): string[] => [
  '--mirror',
  mirrorUrl,
  '--security-mirror',
  mirrorUrl,
  '--keyring',
  keyring,
];

/** `vmstub install ubuntu2404` into a directory on this host, from a fixture mirror signed by keyring. */
export const ubuntuInstallArgs = (target: string, mirrorUrl: string, keyring: string): string[] => [
  'install',
  'ubuntu2404',
  '--target-dir',
  target,
  '--no-boot',
  ...fixtureMirrorArgs(mirrorUrl, keyring),
];

/** `vmstub create NAME` of an Ubuntu release from a fixture mirror signed by keyring. */
export const ubuntuCreateArgs = (
  name: string,
  distro: string,
  mirrorUrl: string,
  keyring: string,
): string[] => ['create', name, '--distro', distro, ...fixtureMirrorArgs(mirrorUrl, keyring)];

/**
 * The tests of `vmstub create` for an Ubuntu release against its fixture mirror: to a verified SSH login,
 * then a stop and a start through the handoff.
 */
/** shown records what the two tests showed, once both have passed (in the test file: evidence.test.ts reads it). */
export function describeUbuntuCreate(distro: DebDistro, shown: () => void): void {
  const MINUTES = 60_000;
  const name = `u${distro.version.replace('.', '')}`;
  describe(`vmstub create --distro ${distro.id} (fixture mirror of Debian 12 binaries)`, () => {
    const box = new Sandbox();
    const ssh = (...command: string[]) => box.sshRoot(name, command);
    let served: ServedMirror | undefined;
    before(async () => {
      useStub(box);
      served = await ubuntuFixtureMirror(join(box.home, 'fixture'), { distro });
    });
    after(() => {
      served?.server.close();
      box.cleanup();
    });
    /** Set when the first test passed whole: the second builds on it, and only then records evidence. */
    let installed = false;

    it('installs, boots and logs in over SSH', { timeout: 30 * MINUTES }, async () => {
      const args = ubuntuCreateArgs(name, distro.id, served!.url, served!.mirror.keyring);
      const r = await box.runAsync([...args, '--user', 'alice', '--json'], { timeoutMs: 30 * MINUTES });
      assert.equal(r.code, 0, `${r.stderr}\n${box.consoleLog(name).split('\n').slice(-40).join('\n')}`);
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number };
      process.stdout.write(`# create ${distro.id} to SSH: ${result.seconds} s\n`);
      // Ubuntu's recipe, on Debian's binaries: netplan renders networkd, the kernel the stand-in pulled in.
      assert.match(ssh('uname', '-r'), /^6\.1\.\d+.*-cloud-amd64$/m);
      assert.equal(ssh('hostname').trim(), name);
      assert.match(ssh('cat', '/etc/netplan/50-vmstub.yaml'), /renderer: networkd/);
      assert.match(
        ssh('cat', '/etc/apt/sources.list.d/ubuntu.sources'),
        new RegExp(`Suites: ${distro.suite}`),
      );
      const units = [
        'ssh',
        'systemd-networkd',
        ...(distro.packages.includes('systemd-resolved') ? ['systemd-resolved'] : []),
      ];
      assert.equal(ssh('systemctl', 'is-active', ...units).trim(), units.map(() => 'active').join('\n'));
      assert.equal(ssh('sudo', '-n', '-u', 'alice', 'sudo', '-n', 'id', '-u').trim(), '0');
      assert.equal(ssh('findmnt', '-n', '-o', 'FSTYPE', '/').trim(), 'xfs');
      installed = true;
    });

    it('boots again through the handoff after stop and start', { timeout: 15 * MINUTES }, () => {
      assert.ok(installed, 'the install to SSH passed');
      assertBootsAgain(box, name);
      shown();
    });
  });
}

/** What the fixture is, in the evidence `vmstub distros` shows. */
export const UBUNTU_FIXTURE_WHAT = (d: DebDistro) => `Debian 12's packages under ${d.suite}'s suite names`;

/** dpkg itself, not the bootstrap's eatmydata wrapper, and no diversion left behind. */
export function assertPlainDpkg(target: string): void {
  assert.deepEqual([...readFileSync(join(target, 'usr/bin/dpkg')).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  assert.ok(!existsSync(join(target, 'usr/bin/dpkg.distrib')));
  assert.doesNotMatch(
    execFileSync('chroot', [target, 'dpkg-divert', '--list'], { encoding: 'utf8' }),
    /\/usr\/bin\/dpkg/,
  );
}
