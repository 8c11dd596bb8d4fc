import type { GentooDistro } from './types.js';

/**
 * Gentoo Linux Release Engineering (Automated Weekly Release Key), as the Gentoo Handbook names it:
 * the key that signs every stage3's DIGESTS. It is fetched when installing and must have exactly this
 * fingerprint.
 */
export const GENTOO_RELEASE_KEY_FINGERPRINT = '13EBBDBEDE7A12775DFDB1BABB572E0E2D182910';

export const GENTOO_DISTROS: GentooDistro[] = [
  {
    id: 'gentoo',
    name: 'Gentoo (systemd stage3)',
    family: 'gentoo',
    arches: ['x86_64', 'aarch64'],
    installable: true,
    filesystems: ['xfs', 'btrfs', 'ext4'],
    mirror: 'https://distfiles.gentoo.org',
    stage3: {
      x86_64: { dir: 'releases/amd64/autobuilds', flavour: 'stage3-amd64-systemd' },
      aarch64: { dir: 'releases/arm64/autobuilds', flavour: 'stage3-arm64-systemd' },
    },
    releaseKey: {
      url: 'https://qa-reports.gentoo.org/output/service-keys.gpg',
      fingerprint: GENTOO_RELEASE_KEY_FINGERPRINT,
    },
    kernelSeries: '6.12',
    packages: [
      'sys-kernel/gentoo-kernel-bin',
      'net-misc/openssh',
      'app-emulation/qemu-guest-agent',
      'app-admin/sudo',
    ],
  },
];
