import type { Arch } from '../util/arch.js';

export type Family = 'deb' | 'el' | 'fedora' | 'gentoo';

export type Filesystem = 'xfs' | 'btrfs' | 'ext4';

/** What every catalog entry says about itself. */
export interface DistroBase {
  /** The name users type: `vmstub create web1 --distro debian12`. */
  id: string;
  name: string;
  family: Family;
  arches: Arch[];
  /** Root filesystems the release's own kernel and initramfs can boot from (EL kernels have no btrfs). */
  filesystems: Filesystem[];
  /** False until vmstub can install it; `vmstub distros` says so. */
  installable: boolean;
  /** Said by `vmstub distros` and when installing: end of life, archive-only mirrors and the like. */
  note?: string;
}

export type NetworkRenderer = 'networkd' | 'netplan';

export interface DebDistro extends DistroBase {
  family: 'deb';
  vendor: 'debian' | 'ubuntu';
  version: string;
  suite: string;
  /** The official mirror per architecture (Ubuntu keeps non-amd64 on ports.ubuntu.com). */
  mirror: Partial<Record<Arch, string>>;
  securityMirror: Partial<Record<Arch, string>>;
  components: string[];
  updatesSuite: string;
  securitySuite: string;
  /** The keyring that verifies the archive, as found in the stub (Debian's packages). */
  keyring: string;
  /** The kernel of a VM: virtio and little else (Debian's cloud kernel has no AHCI or USB storage). */
  kernelPackage: Partial<Record<Arch, string>>;
  /** The kernel of live media, which boot from the CD drives, USB sticks and disks of any machine. */
  mediaKernelPackage: Partial<Record<Arch, string>>;
  /**
   * The release's kernel series (major.minor): filesystems are made with features that kernel can
   * mount (the stub's mkfs tools are newer than older releases' kernels).
   */
  kernelSeries: string;
  /** Installed into every system of this release, besides the kernel. */
  packages: string[];
  network: NetworkRenderer;
}

/** One repository of an RPM distribution: a path under its mirror ($basearch filled in when installing). */
export interface RpmRepoDef {
  id: string;
  path: string;
}

export interface RpmDistro extends DistroBase {
  family: 'el' | 'fedora';
  vendor: 'centos' | 'almalinux' | 'rocky' | 'miraclelinux' | 'fedora';
  /** $releasever: what dnf/yum cannot read from an empty rpm database. */
  releasever: string;
  kernelSeries: string;
  mirror: string;
  repos: RpmRepoDef[];
  /**
   * The signing keys: files in the stub (Debian's distribution-gpg-keys), or, where no independent copy
   * is packaged, files (or every file of a directory) inside the release package, trusted because it
   * came over HTTPS with checksums.
   */
  keys: { from: 'stub'; files: string[] } | { from: 'release-package'; files: string[] };
  releasePackage: string;
  packageManager: 'yum' | 'dnf' | 'dnf5';
  /** Where the target's rpm keeps its database, and whether the stub's rpm (sqlite) can write it natively. */
  rpmdb: { path: '/var/lib/rpm' | '/usr/lib/sysimage/rpm'; backend: 'sqlite' | 'bdb' };
  /** Installed into every system of this release by the target's own package manager. */
  packages: string[];
  /** glibc-langpack-LL for a locale (EL8+, Fedora); EL6/7 carry every locale in glibc-common. */
  langpacks: boolean;
  network: 'nm-keyfile' | 'ifcfg';
  /** systemd-resolved answers LLMNR and mDNS; where it is not packaged, avahi announces mDNS. */
  nameService: 'resolved' | 'avahi';
  init: 'systemd' | 'upstart';
  /** sshd_config has an Include of sshd_config.d (EL9+, Fedora); older ones are edited in place. */
  sshdDropIn: boolean;
  /** XFS v4 (no CRCs): what the release's kernel can boot from (EL6/EL7). */
  xfsV4: boolean;
  /** The release is archived: its own repository files point at dead mirrors. */
  archived: boolean;
  /**
   * Its signing key is bound by SHA-1 self-signatures, which current OpenPGP policy (rpm-sequoia, the
   * stub's rpm) rejects since 2023: the first pass lets rpm accept SHA-1 for key bindings only, never
   * for the signatures on packages (src/bootstrap/rpm/policy.ts).
   */
  sha1KeyBindings: boolean;
}

export interface GentooDistro extends DistroBase {
  family: 'gentoo';
  mirror: string;
  /** The stage3 flavour per architecture, as in latest-stage3-FLAVOUR.txt. */
  stage3: Partial<Record<Arch, { dir: string; flavour: string }>>;
  /** Gentoo Release Engineering's automated signing key: where it is fetched, and the fingerprint it must have. */
  releaseKey: { url: string; fingerprint: string };
  kernelSeries: string;
  packages: string[];
}

export type Distro = DebDistro | RpmDistro | GentooDistro;
