import type { Arch } from '../util/arch.js';
import { usageError } from '../util/errors.js';

export const ACCELS = ['auto', 'kvm', 'tcg'] as const;
export type Accel = (typeof ACCELS)[number];
export const DISK_FORMATS = ['raw', 'qcow2'] as const;
export type DiskFormat = (typeof DISK_FORMATS)[number];

export type NetSpec = { kind: 'user' } | { kind: 'bridge'; bridge: string } | { kind: 'tap'; ifname: string };

export interface HostFwd {
  protocol: 'tcp' | 'udp';
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}

export interface ShareSpec {
  path: string;
  tag: string;
}

export type FwCfgItem = { name: string; file: string } | { name: string; string: string };

export interface DiskSpec {
  path: string;
  format: DiskFormat;
}

/** What an instance is: written once by `run`/`create`, read by every later command. */
export const HANDOFFS = ['kexec', 'host'] as const;
export type Handoff = (typeof HANDOFFS)[number];

export interface VmDefinition {
  version: 1;
  name: string;
  /** Absolute path of a squashfs system image carrying boot/kernel and boot/initramfs. */
  system?: string;
  kernel?: string;
  initrd?: string;
  /** A bootable ISO attached as a CD drive the firmware boots from (no system image or kernel then). */
  iso?: string;
  /** A bootable disk (an ISO written to a disk, a cloud image) the firmware boots from, writable. */
  bootDisk?: DiskSpec;
  /** A cloud-init NoCloud seed (an ISO labelled cidata), attached read-only as the disk with serial cidata. */
  cloudInitSeed?: string;
  /** The guest's architecture for an ISO or a boot disk (a kernel says its own); unset: the host's. */
  arch?: Arch;
  memoryMiB: number;
  cpus: number;
  data?: DiskSpec;
  volatileDataBytes?: number;
  shares: ShareSpec[];
  nets: NetSpec[];
  hostfwds: HostFwd[];
  /** Forward each TCP port the guest listens on from the same port on 127.0.0.1 (src/vm/auto-forward.ts). */
  autoForward?: boolean;
  /**
   * The data disk holds an encrypted root: with unlock 'host' the passphrase is one of fwCfg's items (a
   * file of the instance); with 'console' every boot asks for it on the console.
   */
  encryptedRoot?: { unlock: 'host' | 'console' };
  /** Extra kernel command line arguments, appended after vmstub's own. */
  append: string[];
  fwCfg: FwCfgItem[];
  hvc: boolean;
  uefi: boolean;
  accel: Accel;
  /**
   * How the stub hands over to an installed system: kexec, or by the host (src/boot/boot-export.ts).
   * Unset: the machine's way (ARCH_TRAITS: host on riscv64, whose stub has no kexec).
   */
  handoff?: Handoff;
  sshUser: string;
  stopTimeoutSec: number;
  /** Remove the instance when it stops (`run --rm`). */
  ephemeral: boolean;
  createdAt: string;
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,39}$/i;

/** Instance names become directory names, QEMU -name values and host name defaults. */
export function validateName(name: string): string {
  if (!NAME_RE.test(name) || name.includes('..')) {
    throw usageError(
      `invalid name '${name}': use 1-40 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
  return name;
}

/** The host name an instance gets unless told otherwise: its name, with `.` and `_` turned into `-`. */
export const defaultHostname = (name: string): string => name.replace(/[._]/g, '-');

/** fw_cfg names must live under opt/; a bare name is put there for the user. */
export function normaliseFwCfgName(name: string): string {
  if (!name) throw usageError('--fw-cfg needs a name before =');
  const full = name.startsWith('opt/') ? name : `opt/${name}`;
  if (full.length > 55)
    throw usageError(`--fw-cfg name '${full}' is longer than QEMU's limit of 55 characters`);
  if (/[,\s]/.test(full)) throw usageError(`--fw-cfg name '${full}' must not contain commas or spaces`);
  return full;
}
