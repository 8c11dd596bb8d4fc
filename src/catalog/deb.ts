import { ARCHES, type Arch } from '../util/arch.js';
import type { DebDistro } from './types.js';

const ALL: Arch[] = [...ARCHES];

/** What every Debian release shares; a release below overrides only what differs. */
function debian(
  r: Pick<DebDistro, 'id' | 'version' | 'suite' | 'arches' | 'kernelSeries'> & Partial<DebDistro>,
): DebDistro {
  const mirror = 'http://deb.debian.org/debian';
  return {
    family: 'deb',
    vendor: 'debian',
    name: `Debian ${r.version} (${r.suite})`,
    installable: true,
    filesystems: ['xfs', 'btrfs', 'ext4'],
    mirror: Object.fromEntries(r.arches.map((a) => [a, mirror])),
    securityMirror: Object.fromEntries(r.arches.map((a) => [a, 'http://deb.debian.org/debian-security'])),
    components: ['main'],
    updatesSuite: `${r.suite}-updates`,
    securitySuite: `${r.suite}-security`,
    keyring: '/usr/share/keyrings/debian-archive-keyring.gpg',
    kernelPackage: {
      x86_64: 'linux-image-cloud-amd64',
      aarch64: 'linux-image-cloud-arm64',
      riscv64: 'linux-image-riscv64',
    },
    mediaKernelPackage: {
      x86_64: 'linux-image-amd64',
      aarch64: 'linux-image-arm64',
      riscv64: 'linux-image-riscv64',
    },
    packages: [
      'systemd-sysv',
      'udev',
      'dbus',
      'systemd-resolved',
      'initramfs-tools',
      'openssh-server',
      'qemu-guest-agent',
      'locales',
      'tzdata',
      'sudo',
      'ca-certificates',
      'iproute2',
      'login',
      'passwd',
    ],
    network: 'networkd',
    ...r,
  };
}

const UBUNTU_ARCHIVE = 'http://archive.ubuntu.com/ubuntu';
const UBUNTU_PORTS = 'http://ports.ubuntu.com/ubuntu-ports';
const UBUNTU_SECURITY = 'http://security.ubuntu.com/ubuntu';

/** Up to 22.04 systemd itself carries resolved; from 24.04 it is a package of its own. */
const UBUNTU_PACKAGES = [
  'systemd-sysv',
  'udev',
  'dbus',
  'initramfs-tools',
  'openssh-server',
  'qemu-guest-agent',
  'netplan.io',
  'locales',
  'tzdata',
  'sudo',
  'ca-certificates',
  'iproute2',
];

/** Ubuntu: amd64 on the archive, everything else on ports; main and universe; netplan. */
function ubuntu(
  r: Pick<DebDistro, 'id' | 'version' | 'suite' | 'arches' | 'kernelSeries'> & Partial<DebDistro>,
): DebDistro {
  const onArchive = (a: Arch) => a === 'x86_64';
  return {
    family: 'deb',
    vendor: 'ubuntu',
    name: `Ubuntu ${r.version} (${r.suite})`,
    installable: true,
    filesystems: ['xfs', 'btrfs', 'ext4'],
    mirror: Object.fromEntries(r.arches.map((a) => [a, onArchive(a) ? UBUNTU_ARCHIVE : UBUNTU_PORTS])),
    securityMirror: Object.fromEntries(
      r.arches.map((a) => [a, onArchive(a) ? UBUNTU_SECURITY : UBUNTU_PORTS]),
    ),
    components: ['main', 'universe'],
    updatesSuite: `${r.suite}-updates`,
    securitySuite: `${r.suite}-security`,
    keyring: '/usr/share/keyrings/ubuntu-archive-keyring.gpg',
    kernelPackage: {
      x86_64: 'linux-image-virtual',
      aarch64: 'linux-image-virtual',
      riscv64: 'linux-image-generic',
    },
    mediaKernelPackage: {
      x86_64: 'linux-image-generic',
      aarch64: 'linux-image-generic',
      riscv64: 'linux-image-generic',
    },
    packages: UBUNTU_PACKAGES,
    network: 'netplan',
    ...r,
  };
}

export const DEB_DISTROS: DebDistro[] = [
  debian({
    id: 'debian12',
    version: '12',
    suite: 'bookworm',
    arches: ['x86_64', 'aarch64'],
    kernelSeries: '6.1',
  }),
  debian({ id: 'debian13', version: '13', suite: 'trixie', arches: ALL, kernelSeries: '6.12' }),
  ubuntu({
    id: 'ubuntu2004',
    version: '20.04',
    suite: 'focal',
    arches: ['x86_64', 'aarch64'],
    kernelSeries: '5.4',
    note: 'standard support ended in 2025; the archive still serves it',
  }),
  ubuntu({
    id: 'ubuntu2204',
    version: '22.04',
    suite: 'jammy',
    arches: ['x86_64', 'aarch64'],
    kernelSeries: '5.15',
  }),
  ubuntu({
    id: 'ubuntu2404',
    version: '24.04',
    suite: 'noble',
    arches: ALL,
    kernelSeries: '6.8',
    packages: [...UBUNTU_PACKAGES, 'systemd-resolved'],
  }),
  ubuntu({
    id: 'ubuntu2604',
    version: '26.04',
    suite: 'resolute',
    arches: ALL,
    kernelSeries: '6.17',
    packages: [...UBUNTU_PACKAGES, 'systemd-resolved'],
  }),
];
