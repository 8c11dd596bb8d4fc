import type { Arch } from '../vm/definition.js';

export type Family = 'deb' | 'el' | 'fedora' | 'gentoo';

/** What every catalog entry says about itself. */
export interface DistroBase {
  /** The name users type: `vmstub create web1 --distro debian12`. */
  id: string;
  name: string;
  family: Family;
  arches: Arch[];
  /** False until vmstub can install it; `vmstub distros` says so. */
  installable: boolean;
  /**
   * How the install path is verified here: against the distribution's real mirror, or only against a
   * fixture mirror the tests build (our machines reach Debian's mirror and nothing else).
   */
  verified: 'real-mirror' | 'fixture-mirror' | 'not-yet';
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
  kernelPackage: Partial<Record<Arch, string>>;
  /**
   * The release's kernel series (major.minor): filesystems are made with features that kernel can
   * mount (the stub's mkfs tools are newer than older releases' kernels).
   */
  kernelSeries: string;
  /** Installed into every system of this release, besides the kernel. */
  packages: string[];
  network: NetworkRenderer;
}

export interface PlannedDistro extends DistroBase {
  family: 'el' | 'fedora' | 'gentoo';
}

export type Distro = DebDistro | PlannedDistro;
