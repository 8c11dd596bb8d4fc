import { existsSync, statSync } from 'node:fs';
import { VmstubError } from '../util/errors.js';
import { requireTool, run } from '../util/exec.js';
import { formatSize } from '../util/size.js';
import { detectKernelFormat } from '../boot/kernel-image.js';
import { parseSquashfsListing, resolveInImage } from '../vm/system-image.js';
import type { Arch } from '../util/arch.js';

export interface SquashOptions {
  compression: 'zstd' | 'xz' | 'gzip';
  level?: number;
  blockSize: string;
}

export function mksquashfsArgs(source: string, out: string, o: SquashOptions): string[] {
  const args = [
    source,
    out,
    '-noappend',
    '-quiet',
    '-no-progress',
    '-comp',
    o.compression,
    '-b',
    o.blockSize,
  ];
  if (o.level !== undefined) args.push('-Xcompression-level', String(o.level));
  return args;
}

/** Squashes a tree. SOURCE_DATE_EPOCH, when set, fixes the image's time and clamps every file's. */
export async function squash(source: string, out: string, o: SquashOptions): Promise<void> {
  const tool = requireTool('mksquashfs', 'squashfs-tools');
  const r = await run(tool, mksquashfsArgs(source, out, o), {
    timeoutMs: 60 * 60 * 1000,
    killWithParent: true,
  });
  if (r.code !== 0) throw new VmstubError(`mksquashfs failed: ${r.stderr.trim().split('\n').pop() ?? ''}`);
}

/**
 * Adds a directory's contents to the root of an existing image (mksquashfs appends unless told
 * -noappend), owned by root, in the image's own compression.
 */
export async function appendToSquashfs(source: string, image: string): Promise<void> {
  const tool = requireTool('mksquashfs', 'squashfs-tools');
  const r = await run(tool, [source, image, '-quiet', '-no-progress', '-all-root'], {
    timeoutMs: 10 * 60 * 1000,
  });
  if (r.code !== 0)
    throw new VmstubError(
      `mksquashfs could not append to ${image}: ${r.stderr.trim().split('\n').pop() ?? ''}`,
    );
}

export const MIN_SYSTEM_IMAGE_BYTES = 16 * 1024 * 1024;

/**
 * What vmdebootstrap learned the hard way: check the result before calling it done. A system image must
 * be plausibly large, and carry a kernel (for the architecture asked for) and an initramfs.
 */
export async function checkSystemImage(
  image: string,
  arch: Arch,
  minBytes = MIN_SYSTEM_IMAGE_BYTES,
): Promise<void> {
  if (!existsSync(image)) throw new VmstubError(`${image} was not created`);
  const size = statSync(image).size;
  if (size < minBytes) {
    throw new VmstubError(
      `${image} is implausibly small (${formatSize(size)}, expected at least ${formatSize(minBytes)})`,
    );
  }
  const unsquashfs = requireTool('unsquashfs', 'squashfs-tools');
  const listing = parseSquashfsListing(
    (await run(unsquashfs, ['-d', '', '-lls', image, 'boot'])).stdout.toString('utf8'),
  );
  const kernel = resolveInImage('/boot/kernel', listing);
  if (!kernel) throw new VmstubError(`${image} has no boot/kernel`);
  if (!resolveInImage('/boot/initramfs', listing)) throw new VmstubError(`${image} has no boot/initramfs`);
  const head = (await run(unsquashfs, ['-cat', image, kernel.slice(1)])).stdout.subarray(0, 4096);
  const format = detectKernelFormat(head);
  const kernelArch = 'arch' in format ? format.arch : format.kind === 'efi-zboot' ? arch : undefined;
  if (kernelArch !== arch)
    throw new VmstubError(`${image}: boot/kernel is not an ${arch} kernel (${format.kind})`);
}
