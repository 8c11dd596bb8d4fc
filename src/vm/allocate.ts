import {
  closeSync,
  existsSync,
  openSync,
  readSync,
  statSync,
  statfsSync,
  truncateSync,
  chmodSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { usageError, VmstubError } from '../util/errors.js';
import { requireTool, run, runChecked, which } from '../util/exec.js';
import { formatSize } from '../util/size.js';
import type { DiskFormat } from './definition.js';

export interface AllocateResult {
  path: string;
  format: DiskFormat;
  bytes: number;
  previousBytes?: number;
  action: 'created' | 'grown' | 'unchanged';
}

const BTRFS_MAGIC = 0x9123683e;

/** raw or qcow2, from the file's first bytes. */
export function detectDiskFormat(path: string): DiskFormat {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    return head.equals(Buffer.from([0x51, 0x46, 0x49, 0xfb])) ? 'qcow2' : 'raw';
  } finally {
    closeSync(fd);
  }
}

export async function virtualSize(path: string, format: DiskFormat): Promise<number> {
  if (format === 'raw') return statSync(path).size;
  const out = await runChecked(requireTool('qemu-img', 'qemu-utils'), [
    'info',
    '--output=json',
    '-f',
    'qcow2',
    path,
  ]);
  return (JSON.parse(out.toString('utf8')) as { 'virtual-size': number })['virtual-size'];
}

/**
 * Creates a disk image of the given size (raw and sparse unless qcow2 is asked for), or grows an existing
 * one. It never shrinks or truncates: asking for less than the file holds is an error.
 */
export async function allocateDisk(
  path: string,
  bytes: number,
  format?: DiskFormat,
): Promise<AllocateResult> {
  const size = Math.ceil(bytes / 512) * 512;
  if (existsSync(path)) {
    const st = statSync(path);
    if (!st.isFile()) throw usageError(`${path} is not a regular file`);
    const actual = detectDiskFormat(path);
    if (format && format !== actual) throw usageError(`${path} is a ${actual} image, not ${format}`);
    const current = await virtualSize(path, actual);
    if (size < current) {
      throw usageError(
        `${path} is already ${formatSize(current)}; allocate never shrinks a disk (asked for ${formatSize(size)})`,
      );
    }
    if (size === current) return { path, format: actual, bytes: current, action: 'unchanged' };
    if (actual === 'raw') truncateSync(path, size);
    else
      await runChecked(requireTool('qemu-img', 'qemu-utils'), ['resize', '-f', 'qcow2', path, String(size)]);
    return { path, format: actual, bytes: size, previousBytes: current, action: 'grown' };
  }
  if (!existsSync(dirname(path))) throw usageError(`directory ${dirname(path)} does not exist`);
  const wanted = format ?? 'raw';
  if (wanted === 'raw') {
    closeSync(openSync(path, 'wx', 0o600));
    // Copy-on-write fragments disk images badly on btrfs; the flag only takes while the file is empty.
    const chattr = which('chattr');
    if (chattr && statfsSync(path).type === BTRFS_MAGIC) await run(chattr, ['+C', path]);
    truncateSync(path, size);
  } else {
    const r = await run(requireTool('qemu-img', 'qemu-utils'), [
      'create',
      '-q',
      '-f',
      'qcow2',
      path,
      String(size),
    ]);
    if (r.code !== 0) throw new VmstubError(`qemu-img could not create ${path}: ${r.stderr.trim()}`);
    chmodSync(path, 0o600);
  }
  return { path, format: wanted, bytes: size, action: 'created' };
}

/** A fresh qcow2 overlay on a backing image (which must not be written while the overlay is in use), private. */
export async function createOverlay(path: string, backing: string, format: DiskFormat): Promise<void> {
  await runChecked(requireTool('qemu-img', 'qemu-utils'), [
    'create',
    '-q',
    '-f',
    'qcow2',
    '-b',
    backing,
    '-F',
    format,
    path,
  ]);
  chmodSync(path, 0o600);
}
