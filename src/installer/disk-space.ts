/**
 * Whether an install fits its disk: refused before any work when it cannot (smaller than the root
 * filesystem's own minimum, or than the files of a root bootstrapped on the host), and, when the disk
 * fills during the install, said so with the way on (grow the disk, resume).
 */
import type { Filesystem } from '../catalog/types.js';
import { usageError } from '../util/errors.js';
import { formatSize } from '../util/size.js';

/** The smallest device each mkfs accepts (mkfs.xfs: "must be larger than 300MB"; mkfs.btrfs's own minimum). */
export const FILESYSTEM_MIN_BYTES: Record<Filesystem, number> = {
  xfs: 300 * 1024 ** 2,
  btrfs: 114_294_784,
  ext4: 0,
};

/**
 * Refuses a disk that cannot hold the install: below the filesystem's minimum, or (when the root was
 * bootstrapped on the host) smaller than that minimum plus the root's files. Passing does not promise
 * room for the kernel's initramfs and the packages installed in the stub: a disk that fills later is
 * reported by the install (diskFull).
 */
export function refuseSmallDisk(
  o: { diskBytes: number; filesystem: Filesystem; distro: string; rootBytes?: number },
  grow?: string,
): void {
  const floor = FILESYSTEM_MIN_BYTES[o.filesystem];
  const way = grow ? `; grow it first: vmstub disk grow ${grow} SIZE` : '';
  if (o.diskBytes < floor)
    throw usageError(
      `a ${formatSize(o.diskBytes)} disk is too small for a ${o.filesystem} root (mkfs needs at least ${formatSize(floor)})${way}`,
    );
  if (o.rootBytes !== undefined && o.diskBytes < floor + o.rootBytes)
    throw usageError(
      `a ${formatSize(o.diskBytes)} disk is too small for this ${o.distro} root: its files take ${formatSize(o.rootBytes)}, and a ${o.filesystem} filesystem needs ${formatSize(floor)} besides (at least ${formatSize(floor + o.rootBytes)})${way}`,
    );
}

export interface FilesystemSpace {
  sizeBytes: number;
  freeBytes: number;
}

/** rpm and dnf count before they write: their word is enough, however much is still free. */
const NEEDS_SPACE = /more space needed on the|needs \S+ (more space )?on the \S+ filesystem/i;
const WRITE_FAILED = /no space left on device|ENOSPC/i;

/**
 * Whether a failed step failed because the new root's filesystem filled, from what it said (the
 * failure and the step's last lines: dnf's own reason is only "Could not run transaction"): rpm or dnf said it needs more
 * space, or a write ran out of space and the filesystem has little left (a tool may have deleted its
 * partial file since), or the filesystem is all but full whatever the failure said. Space running out
 * elsewhere (the stub's own memory-backed directories) is not the disk's.
 */
export function filledUp(said: string, fs: FilesystemSpace): boolean {
  const free = fs.freeBytes / fs.sizeBytes;
  return NEEDS_SPACE.test(said) || (WRITE_FAILED.test(said) && free < 0.1) || free < 0.01;
}

/** What the failure line adds when the disk filled. */
export function diskFullNote(fs: FilesystemSpace): string {
  return `the new root's filesystem is full (${formatSize(fs.sizeBytes - fs.freeBytes)} of ${formatSize(fs.sizeBytes)} used)`;
}
