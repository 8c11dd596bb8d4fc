import type { Arch } from '../util/arch.js';
import type { RpmDistro } from './types.js';

/** Where the stub finds distribution keys: Debian's distribution-gpg-keys package. */
export const DISTRIBUTION_KEYS = '/usr/share/distribution-gpg-keys';

type Release = Pick<RpmDistro, 'id' | 'name' | 'releasever' | 'kernelSeries' | 'arches' | 'mirror' | 'keys'> &
  Partial<RpmDistro>;

const EL_PACKAGES = [
  'kernel',
  'dracut',
  // kernel-install's grub plugin puts vmlinuz and the initramfs in /boot, where the handoff looks
  'grub2-common',
  'systemd',
  'passwd',
  'sudo',
  'openssh-server',
  'openssh-clients',
  'NetworkManager',
  'iproute',
  'qemu-guest-agent',
  'avahi',
  'xfsprogs',
  'tzdata',
  'tar',
  'less',
  'vim-minimal',
];

/** A modern EL (8 and later): BaseOS and AppStream, dnf, NetworkManager keyfiles, avahi for mDNS. */
function el(r: Release): RpmDistro {
  return {
    family: 'el',
    vendor: 'centos',
    installable: true,
    // RHEL dropped btrfs (EL8 and later have no module; EL6/7 only a technology preview)
    filesystems: ['xfs', 'ext4'],
    repos: [
      { id: 'baseos', path: 'BaseOS/$basearch/os/' },
      { id: 'appstream', path: 'AppStream/$basearch/os/' },
    ],
    releasePackage: 'centos-release',
    packageManager: 'dnf',
    rpmdb: { path: '/var/lib/rpm', backend: 'sqlite' },
    packages: EL_PACKAGES,
    langpacks: true,
    network: 'nm-keyfile',
    nameService: 'avahi',
    init: 'systemd',
    sshdDropIn: true,
    xfsV4: false,
    archived: false,
    sha1KeyBindings: false,
    ...r,
  };
}

const stubKey = (...files: string[]): RpmDistro['keys'] => ({
  from: 'stub',
  files: files.map((f) => `${DISTRIBUTION_KEYS}/${f}`),
});

const X86: Arch[] = ['x86_64'];
const X86_ARM: Arch[] = ['x86_64', 'aarch64'];

/** EL6 and EL7: yum, one os/ tree plus updates, the Berkeley DB rpm database, XFS v4. */
function oldCentos(r: Release): RpmDistro {
  return el({
    repos: [
      { id: 'os', path: 'os/$basearch/' },
      { id: 'updates', path: 'updates/$basearch/' },
    ],
    packageManager: 'yum',
    rpmdb: { path: '/var/lib/rpm', backend: 'bdb' },
    langpacks: false,
    sshdDropIn: false,
    xfsV4: true,
    archived: true,
    // CentOS 6's and 7's keys: SHA-1 self-signatures (checked with the stub's rpm: stub-rpm.test.ts)
    sha1KeyBindings: true,
    note: 'end of life: installed from vault.centos.org, without updates since',
    ...r,
  });
}

export const RPM_DISTROS: RpmDistro[] = [
  oldCentos({
    id: 'centos6',
    name: 'CentOS 6.10',
    releasever: '6',
    kernelSeries: '2.6',
    arches: X86,
    mirror: 'https://vault.centos.org/6.10',
    keys: stubKey('centos/RPM-GPG-KEY-CentOS-6'),
    packages: [
      'kernel',
      'dracut',
      'passwd',
      'sudo',
      'openssh-server',
      'openssh-clients',
      'dhclient',
      'avahi',
      'qemu-guest-agent',
      'acpid',
      'xfsprogs',
      'tzdata',
      'tar',
      'less',
      'vim-minimal',
    ],
    network: 'ifcfg',
    init: 'upstart',
    note: 'end of life: installed from vault.centos.org; kexec of its 2.6.32 kernel is untested',
  }),
  oldCentos({
    id: 'centos7',
    name: 'CentOS 7.9',
    releasever: '7',
    kernelSeries: '3.10',
    arches: X86,
    mirror: 'https://vault.centos.org/7.9.2009',
    keys: stubKey('centos/RPM-GPG-KEY-CentOS-7'),
  }),
  el({
    id: 'centos8stream',
    name: 'CentOS Stream 8',
    releasever: '8-stream',
    kernelSeries: '4.18',
    arches: X86_ARM,
    mirror: 'https://vault.centos.org/8-stream',
    keys: stubKey('centos/RPM-GPG-KEY-CentOS-Official'),
    releasePackage: 'centos-stream-release',
    rpmdb: { path: '/var/lib/rpm', backend: 'bdb' },
    sshdDropIn: false,
    archived: true,
    // RPM-GPG-KEY-CentOS-Official: SHA-1 self-signatures (Stream 9 and 10 use its SHA-256 copy)
    sha1KeyBindings: true,
    note: 'end of life: installed from vault.centos.org',
  }),
  el({
    id: 'centos9stream',
    name: 'CentOS Stream 9',
    releasever: '9-stream',
    kernelSeries: '5.14',
    arches: X86_ARM,
    mirror: 'https://mirror.stream.centos.org/9-stream',
    keys: stubKey('centos/RPM-GPG-KEY-CentOS-Official-SHA256'),
    releasePackage: 'centos-stream-release',
  }),
  el({
    id: 'centos10stream',
    name: 'CentOS Stream 10',
    releasever: '10-stream',
    kernelSeries: '6.12',
    arches: X86_ARM,
    mirror: 'https://mirror.stream.centos.org/10-stream',
    keys: stubKey('centos/RPM-GPG-KEY-CentOS-Official-SHA256'),
    releasePackage: 'centos-stream-release',
    rpmdb: { path: '/usr/lib/sysimage/rpm', backend: 'sqlite' },
  }),
  el({
    id: 'almalinux9',
    name: 'AlmaLinux 9',
    vendor: 'almalinux',
    releasever: '9',
    kernelSeries: '5.14',
    arches: X86_ARM,
    mirror: 'https://repo.almalinux.org/almalinux/9',
    keys: stubKey('alma/RPM-GPG-KEY-AlmaLinux-9'),
    releasePackage: 'almalinux-release',
  }),
  el({
    id: 'rocky8',
    name: 'Rocky Linux 8',
    vendor: 'rocky',
    releasever: '8',
    kernelSeries: '4.18',
    arches: X86_ARM,
    mirror: 'https://dl.rockylinux.org/pub/rocky/8',
    keys: stubKey('rocky/RPM-GPG-KEY-Rocky-8'),
    releasePackage: 'rocky-release',
    rpmdb: { path: '/var/lib/rpm', backend: 'bdb' },
    sshdDropIn: false,
  }),
  el({
    id: 'miraclelinux8',
    name: 'MIRACLE LINUX 8',
    vendor: 'miraclelinux',
    releasever: '8',
    kernelSeries: '4.18',
    arches: X86,
    mirror: 'https://repo.dist.miraclelinux.net/miraclelinux/8-latest',
    // No independent copy of MIRACLE LINUX's key is packaged anywhere the stub can reach.
    keys: { from: 'release-package', files: ['/etc/pki/rpm-gpg'] },
    releasePackage: 'miraclelinux-release',
    rpmdb: { path: '/var/lib/rpm', backend: 'bdb' },
    sshdDropIn: false,
    note: 'its signing key comes from miraclelinux-release, fetched over HTTPS (no independent copy is packaged)',
  }),
  {
    ...el({
      id: 'fedora42',
      name: 'Fedora 42',
      vendor: 'fedora',
      releasever: '42',
      kernelSeries: '6.14',
      arches: X86_ARM,
      mirror: 'https://dl.fedoraproject.org/pub/fedora/linux',
      keys: stubKey('fedora/RPM-GPG-KEY-fedora-42-primary'),
    }),
    family: 'fedora',
    filesystems: ['btrfs', 'xfs', 'ext4'],
    repos: [
      { id: 'fedora', path: 'releases/42/Everything/$basearch/os/' },
      { id: 'updates', path: 'updates/42/Everything/$basearch/' },
    ],
    releasePackage: 'fedora-release',
    packageManager: 'dnf5',
    rpmdb: { path: '/usr/lib/sysimage/rpm', backend: 'sqlite' },
    nameService: 'resolved',
    // resolved answers mDNS and LLMNR: no avahi
    packages: [...EL_PACKAGES.filter((p) => p !== 'avahi'), 'systemd-resolved'],
  },
];
