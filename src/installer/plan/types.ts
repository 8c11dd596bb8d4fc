import type { RpmRepo } from '../../bootstrap/rpm/bootstrap.js';
import type { ReleaseKey } from '../../bootstrap/gentoo/stage3.js';
import type { Distro } from '../../catalog/types.js';
import type { InstallSpec } from '../spec.js';

/** Where the target is mounted in the stub, and where files for the bootstrap's setup hook are staged. */
export const TARGET = '/run/vmstub-install/target';
export const STAGING = '/run/vmstub-install/early';
/** mmdebstrap hook directories the installer writes (--hook-dir). */
export const HOOKS = '/run/vmstub-install/hooks';
export const DATA_DISK = '/dev/disk/by-id/virtio-data';
/** The read-only disk that carries, as a plain tar stream, a root filesystem bootstrapped on the host. */
export const ROOT_TARBALL_SERIAL = 'vmstub-root';
export const ROOT_TARBALL_DISK = `/dev/disk/by-id/virtio-${ROOT_TARBALL_SERIAL}`;

/** Values only known while installing, written into file contents as {{NAME}}. */
export const ROOT_UUID = '{{ROOT_UUID}}';

/** An encrypted root's container is opened under this name, in the stub and in the installed system. */
export const LUKS_MAPPING = 'vmstub-root';
export const LUKS_DEVICE = `/dev/mapper/${LUKS_MAPPING}`;
/**
 * LUKS2, argon2id with 256 MiB of memory (a VM of 512 MiB can still open it) and an unlock that takes a
 * second where the container is made: each boot through the stub opens it twice (the handoff, then the
 * system's initramfs).
 */
/** How a passphrase becomes a key slot's key: argon2id in 256 MiB, a one-second unlock. */
export const LUKS_KEYSLOT_OPTIONS = ['--pbkdf=argon2id', '--pbkdf-memory=262144', '--iter-time=1000'];
export const LUKS_FORMAT_OPTIONS = [
  '--batch-mode',
  // crypttab names it by this label (src/installer/plan/deb.ts)
  `--label=${LUKS_MAPPING}`,
  '--type=luks2',
  ...LUKS_KEYSLOT_OPTIONS,
];

export type Action =
  /** A command in the stub, or with chroot inside the target (proc, sys and dev mounted for it). */
  | {
      kind: 'exec';
      argv: string[];
      chroot?: boolean;
      input?: string;
      env?: Record<string, string>;
      progress?: 'bootstrap';
    }
  /** A file inside the target, or in the staging directory. */
  | {
      kind: 'write';
      path: string;
      content: string;
      mode?: number;
      in?: 'target' | 'staging' | 'hooks';
      owner?: string;
    }
  /**
   * A file the spec asks for, inside the target, as given: bytes (base64), never substituted; its
   * missing directories made root's; owner a user (its group) or USER:GROUP of the new system.
   */
  | { kind: 'put-file'; path: string; base64: string; mode: number; owner: string; append: boolean }
  | { kind: 'symlink'; path: string; target: string }
  /** Delete a file or directory inside the target. */
  | { kind: 'remove'; path: string }
  /** The RPM bootstrap's first pass (src/bootstrap/rpm) into the target. */
  | {
      kind: 'rpm-bootstrap';
      repos: RpmRepo[];
      packages: string[];
      dbpath: string;
      /** Key files in the stub, or (keysFromFirstPackage) inside the first package. */
      keys: string[];
      keysFromFirstPackage?: string[];
      /** The release's key is bound by SHA-1 self-signatures: rpm may accept those (bootstrap/rpm/policy.ts). */
      sha1KeyBindings?: boolean;
    }
  /** Find, verify and unpack the newest Gentoo stage3 (src/bootstrap/gentoo) into the target. */
  | {
      kind: 'gentoo-stage3';
      mirror: string;
      dir: string;
      flavour: string;
      releaseKey: ReleaseKey;
    }
  | { kind: 'copy-in'; from: string; path: string }
  /** Refuse a disk that holds a filesystem or partition table, unless wipe. */
  | { kind: 'check-blank'; device: string; wipe: boolean; startOver?: boolean }
  /** Refuse a share or directory that is not empty (vmstub never deletes files on the host's side). */
  | { kind: 'check-empty-target' }
  /** A LUKS2 container on device with the host's passphrase (fw_cfg), opened as LUKS_MAPPING. */
  | { kind: 'luks-format'; device: string }
  /** A clone's container: its key slot changed from the source's passphrase to its own, then opened. */
  | { kind: 'luks-rekey'; device: string }
  | { kind: 'mount'; source: string; fstype: string; options?: string }
  | { kind: 'read-uuid'; device: string }
  | { kind: 'chroot-mounts' }
  /** The boot handoff must find a kernel and initramfs where it looks. */
  | { kind: 'verify-boot' }
  | { kind: 'collect-host-keys' }
  /**
   * The system's SSH host keys: the ones the host made for it (natively; RSA under TCG takes 10 s),
   * else ssh-keygen -A in the target. Either way only this system's, never the stub's.
   */
  | { kind: 'host-keys' };

export interface Step {
  id: string;
  title: string;
  actions: Action[];
}

export interface Plan {
  spec: InstallSpec;
  distro: Distro;
  steps: Step[];
}

/** The actions that need nothing of an install: the image builder configures its root with them too. */
export type RootAction = Extract<Action, { kind: 'exec' | 'write' | 'symlink' | 'remove' }>;

export const chroot = (argv: string[], input?: string): Extract<Action, { kind: 'exec' }> => ({
  kind: 'exec',
  argv,
  chroot: true,
  input,
});

/** The root filesystem's type as fstab and the initramfs name it. */
export const rootFsType = (spec: InstallSpec) => (spec.target === 'disk' ? spec.filesystem : 'virtiofs');
