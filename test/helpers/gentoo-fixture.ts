/**
 * A fixture Gentoo made of real, bootable binaries, for the recipe these machines cannot reach a mirror
 * of: Debian 12's binaries, installed by mmdebstrap (debian-tree.ts) and packed as a systemd stage3,
 * published as Gentoo's release engineering publishes one: the pointer file
 * `latest-stage3-amd64-systemd.txt` and the tarball's `.DIGESTS`, both clear-signed by the signing
 * subkey of a test key that create is given with --keyring.
 *
 * What is not Gentoo's, and said so here and in the evidence: there is no Portage binary where this
 * fixture is made, so `emerge-webrsync` and `emerge` are stand-ins. The stand-in emerge-webrsync fetches
 * no ebuild repository. The stand-in emerge refuses any atom the stage3 does not carry, as emerge does,
 * and builds or fetches nothing: the stage3 already holds what the recipe's atoms name, and for
 * sys-kernel/gentoo-kernel-bin it does what installkernel does with USE=dracut (the kernel image into
 * /boot and an initramfs by the real dracut, with the recipe's dracut configuration). Both log their
 * arguments to /var/log/vmstub-fixture-portage.log, for the tests to read.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { GENTOO_DISTROS } from '../../src/catalog/gentoo.js';
import { IMAGE_PACKAGES } from '../../src/image/planned-family.js';
import type { GentooDistro } from '../../src/catalog/types.js';
import { debianTree, digest, sh } from './debian-tree.js';
import { testCacheDir } from './fixture.js';
import { makeSigningKey, type SigningKey } from './rpm-repo.js';

/** The Debian packages that stand for what a Gentoo system has once the recipe's emerge has run. */
const DEBIAN_PACKAGES = [
  'linux-image-cloud-amd64',
  'dracut',
  'systemd',
  'systemd-sysv',
  'systemd-resolved',
  'udev',
  'dbus',
  'libpam-systemd',
  'openssh-server',
  'sudo',
  'qemu-guest-agent',
  'locales',
  'passwd',
  'iproute2',
  'tzdata',
  'xfsprogs',
  'less',
  // what an image adds (vmstub image build): dracut's live module, zstd, kmod
  'dracut-live',
  'zstd',
  'kmod',
];

/** The atoms emerge takes: the recipe's, an image's, and the package the image tests ask for by its bare name. */
const atomsFor = (d: GentooDistro) => [...d.packages, ...IMAGE_PACKAGES.gentoo, 'less'];

const PORTAGE_LOG = '/var/log/vmstub-fixture-portage.log';

const EMERGE_WEBRSYNC = `#!/bin/sh
# vmstub fixture stand-in for Portage's emerge-webrsync: no ebuild repository is fetched.
echo "emerge-webrsync $*" >> ${PORTAGE_LOG}
echo "emerge-webrsync: vmstub fixture stand-in: no ebuild repository fetched"
`;

/** The atoms the stage3 carries, one per line: what the recipe asks emerge for, and nothing else. */
const emergeStandIn = (atoms: string[]) => `#!/bin/sh
# vmstub fixture stand-in for Portage's emerge: it builds and fetches nothing. The stage3 already holds
# what these atoms name; any other atom is refused as emerge refuses it. For the binary kernel it does
# what installkernel does with USE=dracut.
set -e
echo "emerge $*" >> ${PORTAGE_LOG}
for a in "$@"; do
  case "$a" in
    -*) ;;
${atoms.map((a) => `    ${a}) ;;`).join('\n')}
    *) echo "emerge: there are no ebuilds to satisfy \\"$a\\"." >&2; exit 1 ;;
  esac
done
for a in "$@"; do
  [ "$a" = sys-kernel/gentoo-kernel-bin ] || continue
  for image in /usr/lib/modules/*/vmlinuz; do
    v=$(basename "$(dirname "$image")")
    cp "$image" "/boot/vmlinuz-$v"
    cp "/usr/lib/modules/$v/config" "/boot/config-$v"
    cp "/usr/lib/modules/$v/System.map" "/boot/System.map-$v"
    dracut --force --kver "$v" "/boot/initramfs-$v.img"
  done
done
`;

const OS_RELEASE = [
  'NAME=Gentoo',
  'ID=gentoo',
  'PRETTY_NAME="Gentoo Linux (vmstub fixture: Debian 12 binaries)"',
  'VERSION_ID="2.17"',
  'HOME_URL="https://www.gentoo.org/"',
  '',
].join('\n');

export interface GentooFixture {
  /** The mirror tree: releases/amd64/autobuilds with the pointer file, the stage3 and its DIGESTS. */
  mirror: string;
  key: SigningKey;
  kernelVersion: string;
  stage3: string;
}

const AUTOBUILDS = 'releases/amd64/autobuilds';
const STAMP = '20261201T170104Z';

/**
 * The fixture, built once and kept in the test cache (keyed by the Debian tree, the recipe's atoms and
 * this file): the tree (about two and a half minutes the first time), then a minute or two of xz.
 */
export function gentooFixture(d: GentooDistro = GENTOO_DISTROS[0]!): GentooFixture {
  const root = debianTree(DEBIAN_PACKAGES);
  const self = readFileSync(new URL(import.meta.url), 'utf8');
  const dir = join(testCacheDir(), `gentoo-fixture-${digest(root, ...d.packages, self)}`);
  const done = join(dir, 'fixture.json');
  if (existsSync(done)) return JSON.parse(readFileSync(done, 'utf8')) as GentooFixture;
  for (const old of readdirSync(testCacheDir()).filter((f) => f.startsWith('gentoo-fixture-')))
    rmSync(join(testCacheDir(), old), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tree = join(dir, 'tree');
  sh('cp', ['-a', `${root}/.`, `${tree}/`]);
  const put = (path: string, content: string, mode = 0o644) => {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), content);
    chmodSync(join(tree, path), mode);
  };

  // The kernel where gentoo-kernel-bin leaves it before installkernel: with its modules, not in /boot.
  const kernelVersion = readdirSync(join(tree, 'usr/lib/modules'))[0]!;
  const moduleDir = join(tree, 'usr/lib/modules', kernelVersion);
  for (const f of ['vmlinuz', 'config', 'System.map'])
    sh('mv', [join(tree, 'boot', `${f}-${kernelVersion}`), join(moduleDir, f)]);
  for (const f of readdirSync(join(tree, 'boot'))) rmSync(join(tree, 'boot', f), { recursive: true });
  for (const link of ['vmlinuz', 'vmlinuz.old', 'initrd.img', 'initrd.img.old'])
    rmSync(join(tree, link), { force: true });

  put('/usr/lib/os-release', OS_RELEASE);
  put('/etc/gentoo-release', 'Gentoo Base System release 2.17 (vmstub fixture)\n');
  put('/etc/portage/make.conf', '# vmstub fixture: Debian 12 binaries as a Gentoo stage3\n');
  put('/usr/bin/emerge-webrsync', EMERGE_WEBRSYNC, 0o755);
  put('/usr/bin/emerge', emergeStandIn(atomsFor(d)), 0o755);
  // Gentoo's baselayout has the wheel group, its sudoers' group (Debian's is sudo).
  sh('groupadd', ['--root', tree, '--system', 'wheel']);
  // sshd.service as Gentoo names OpenSSH's unit; Debian's ssh.service, its alias and its enablement go
  // (a stage3 enables no sshd: the recipe does).
  const sshUnit = readFileSync(join(tree, 'usr/lib/systemd/system/ssh.service'), 'utf8');
  put('/usr/lib/systemd/system/sshd.service', sshUnit.replace(/^Alias=sshd\.service\n/m, ''));
  for (const path of [
    'usr/lib/systemd/system/ssh.service',
    'etc/systemd/system/sshd.service',
    'etc/systemd/system/multi-user.target.wants/ssh.service',
    // Debian's SysV script, from which systemd would make an ssh.service beside sshd.service
    'etc/init.d/ssh',
    // a stage3 has no resolv.conf of its own; Debian's points into /run, which the install copies over
    'etc/resolv.conf',
    // the stage3 is everyone's: no machine's identity in it
    'etc/machine-id',
    'var/lib/dbus/machine-id',
    ...readdirSync(join(tree, 'etc/ssh'))
      .filter((f) => f.startsWith('ssh_host_'))
      .map((f) => `etc/ssh/${f}`),
  ])
    rmSync(join(tree, path), { force: true });

  const mirror = join(dir, 'mirror');
  const builds = join(mirror, AUTOBUILDS);
  const name = `stage3-amd64-systemd-${STAMP}.tar.xz`;
  mkdirSync(join(builds, STAMP), { recursive: true });
  const stage3 = join(builds, STAMP, name);
  sh('tar', ['-C', tree, '--xattrs', '--xattrs-include=*.*', '--numeric-owner', '-cJf', stage3, '.'], {
    env: { ...process.env, XZ_OPT: '-T0 -2' },
  });
  rmSync(tree, { recursive: true, force: true });

  const key = makeSigningKey(dir, 'gentoo-releng', { signingSubkey: true });
  const clearsign = (text: string) =>
    sh('gpg', ['--batch', '--quiet', '--local-user', key.fingerprint, '--clearsign'], {
      input: text,
      env: { ...process.env, GNUPGHOME: key.home },
    });
  const bytes = readFileSync(stage3);
  const hash = (algorithm: string) => createHash(algorithm).update(bytes).digest('hex');
  writeFileSync(
    `${stage3}.DIGESTS`,
    clearsign(`# BLAKE2B HASH\n${hash('blake2b512')}  ${name}\n# SHA512 HASH\n${hash('sha512')}  ${name}\n`),
  );
  writeFileSync(
    join(builds, 'latest-stage3-amd64-systemd.txt'),
    clearsign(`# Latest as of Tue, 01 Dec 2026 17:01:04 +0000\n${STAMP}/${name} ${bytes.length}\n`),
  );
  const fixture: GentooFixture = { mirror, key, kernelVersion, stage3 };
  writeFileSync(done, JSON.stringify(fixture));
  return fixture;
}

/** What the fixture is, in the evidence `vmstub distros` shows. */
export const GENTOO_FIXTURE_WHAT =
  "Debian 12's binaries as a systemd stage3, published and signed as Gentoo's; emerge-webrsync and emerge are stand-ins (no Portage here): no ebuild repository fetched, no package built or fetched, the kernel installed as installkernel with dracut does";
