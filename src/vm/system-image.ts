import { createHash } from 'node:crypto';
import {
  mkdirSync,
  openSync,
  readSync,
  closeSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { detectKernelFormat, kernelArch, unpackZboot } from '../boot/kernel-image.js';
import { fileSha256 } from '../util/digest.js';
import { usageError, VmstubError } from '../util/errors.js';
import { requireTool, runChecked, run } from '../util/exec.js';
import { cacheDir } from '../util/paths.js';
import type { Arch } from '../util/arch.js';

export interface BootFiles {
  kernel: string;
  initrd?: string;
  arch: Arch;
  /** The image's own kernel arguments (its boot/cmdline), placed before the user's --append. */
  cmdline?: string;
}

export interface ImageEntry {
  type: 'file' | 'dir' | 'link' | 'other';
  size: number;
  target?: string;
}

/** Parses `unsquashfs -d '' -lls` output into absolute image paths. */
export function parseSquashfsListing(text: string): Map<string, ImageEntry> {
  const entries = new Map<string, ImageEntry>();
  for (const line of text.split('\n')) {
    const m = /^([-dlcbps])\S{9}\s+\S+\s+(\d+)\s+\d{4}-\d\d-\d\d \d\d:\d\d (.*)$/.exec(line);
    if (!m) continue;
    const type = m[1] === '-' ? 'file' : m[1] === 'd' ? 'dir' : m[1] === 'l' ? 'link' : 'other';
    let path = m[3]!;
    let target: string | undefined;
    if (type === 'link') {
      const arrow = path.indexOf(' -> ');
      if (arrow >= 0) {
        target = path.slice(arrow + 4);
        path = path.slice(0, arrow);
      }
    }
    entries.set(path === '' ? '/' : path, { type, size: Number(m[2]), target });
  }
  return entries;
}

/**
 * Follows symlinks inside an image: relative targets from the link's directory, absolute ones from the
 * image's root (never the host's). Returns the final path of a regular file, or undefined.
 */
export function resolveInImage(path: string, entries: Map<string, ImageEntry>): string | undefined {
  let current = posix.normalize(path);
  for (let hops = 0; hops < 16; hops++) {
    const e = entries.get(current);
    if (!e) return undefined;
    if (e.type === 'file') return current;
    if (e.type !== 'link' || e.target === undefined) return undefined;
    current = e.target.startsWith('/')
      ? posix.normalize(e.target)
      : posix.normalize(posix.join(posix.dirname(current), e.target));
  }
  return undefined;
}

function readHead(path: string, length = 4096): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    const n = readSync(fd, buf, 0, length, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * The image's sha256, remembered per (device, inode, size, mtime) so that booting the same image again
 * does not read all of it again.
 */
async function imageDigest(image: string, cache: string): Promise<string> {
  const st = statSync(image, { bigint: true });
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
  const memo = join(cache, 'digests', createHash('sha256').update(key).digest('hex').slice(0, 32));
  if (existsSync(memo)) return readFileSync(memo, 'utf8').trim();
  const digest = await fileSha256(image);
  mkdirSync(dirname(memo), { recursive: true });
  writeFileSync(memo, digest + '\n');
  return digest;
}

/** Makes a kernel file something QEMU's -kernel (and kexec) can load: unpacks EFI zboot and gzip images. */
async function loadableKernel(raw: Buffer): Promise<{ data: Buffer; arch: Arch }> {
  let data = raw;
  let format = detectKernelFormat(data.subarray(0, 4096));
  if (format.kind === 'efi-zboot') {
    const payload = unpackZboot(data, format);
    data = payload.compressed
      ? await runChecked(
          requireTool(
            payload.compressed === 'zstd' ? 'zstd' : 'xz',
            `${payload.compressed === 'zstd' ? 'zstd' : 'xz-utils'}`,
          ),
          ['-dc'],
          { input: payload.data },
        )
      : payload.data;
    format = detectKernelFormat(data.subarray(0, 4096));
  } else if (format.kind === 'gzip') {
    data = gunzipSync(data);
    format = detectKernelFormat(data.subarray(0, 4096));
  }
  const arch = kernelArch(format);
  if (!arch) throw usageError('the kernel is not an x86_64 bzImage, arm64 Image or RISC-V Image');
  return { data, arch };
}

function writeAtomic(path: string, data: Buffer | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

interface CachedBoot {
  arch: Arch;
  hasInitrd: boolean;
  cmdline?: string;
}

/** boot/cmdline: one line of kernel arguments, if the image has it. */
export function parseImageCmdline(text: string): string | undefined {
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .join(' ');
  return line || undefined;
}

/** boot/kernel and boot/initramfs of a squashfs system image, extracted once per image digest. */
export async function bootFilesFromImage(image: string): Promise<BootFiles> {
  let head: Buffer;
  try {
    head = readHead(image, 4);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw usageError(
      code === 'ENOENT' ? `system image ${image} not found` : `cannot read system image ${image}: ${code}`,
    );
  }
  if (head.toString('latin1') !== 'hsqs') throw usageError(`${image} is not a squashfs image`);

  const cache = join(cacheDir(), 'boot-files');
  const digest = await imageDigest(image, cache);
  const dir = join(cache, digest);
  const metaPath = join(dir, 'meta.json');
  if (existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as CachedBoot;
    return {
      kernel: join(dir, 'kernel'),
      initrd: meta.hasInitrd ? join(dir, 'initramfs') : undefined,
      arch: meta.arch,
      cmdline: meta.cmdline,
    };
  }

  const unsquashfs = requireTool('unsquashfs', 'squashfs-tools');
  const listing = await run(unsquashfs, ['-d', '', '-lls', image, 'boot']);
  if (listing.code !== 0 && !listing.stdout.length) {
    throw usageError(`cannot read ${image} with unsquashfs: ${listing.stderr.trim().split('\n').pop()}`);
  }
  const entries = parseSquashfsListing(listing.stdout.toString('utf8'));
  const kernelPath = resolveInImage('/boot/kernel', entries);
  const initrdPath = resolveInImage('/boot/initramfs', entries);
  if (!kernelPath) {
    throw usageError(`${image} has no boot/kernel (a system image carries boot/kernel and boot/initramfs)`);
  }
  if (!initrdPath) {
    throw usageError(
      `${image} has no boot/initramfs (a system image carries boot/kernel and boot/initramfs)`,
    );
  }
  const cat = (p: string) => runChecked(unsquashfs, ['-cat', image, p.slice(1)], { timeoutMs: 120_000 });
  let kernel: { data: Buffer; arch: Arch };
  try {
    kernel = await loadableKernel(await cat(kernelPath));
  } catch (e) {
    if (e instanceof VmstubError) throw usageError(`${image}: boot/kernel: ${e.message}`);
    throw e;
  }
  const cmdlinePath = resolveInImage('/boot/cmdline', entries);
  const cmdline = cmdlinePath ? parseImageCmdline((await cat(cmdlinePath)).toString('utf8')) : undefined;
  mkdirSync(dir, { recursive: true });
  writeAtomic(join(dir, 'kernel'), kernel.data);
  writeAtomic(join(dir, 'initramfs'), await cat(initrdPath));
  writeAtomic(metaPath, JSON.stringify({ arch: kernel.arch, hasInitrd: true, cmdline } satisfies CachedBoot));
  return { kernel: join(dir, 'kernel'), initrd: join(dir, 'initramfs'), arch: kernel.arch, cmdline };
}

/** A kernel given with --kernel: used as it is when QEMU can load it, else unpacked into the cache. */
export async function bootFilesFromKernel(kernel: string, initrd?: string): Promise<BootFiles> {
  for (const [what, path] of [
    ['kernel', kernel],
    ['initrd', initrd],
  ] as const) {
    if (path !== undefined && !existsSync(path)) throw usageError(`${what} ${path} not found`);
  }
  const format = detectKernelFormat(readHead(kernel));
  const arch = kernelArch(format);
  if (arch) return { kernel, initrd, arch };
  const digest = await fileSha256(kernel);
  const out = join(cacheDir(), 'boot-files', `kernel-${digest}`);
  let loadable: { data: Buffer; arch: Arch };
  try {
    loadable = await loadableKernel(readFileSync(kernel));
  } catch (e) {
    throw usageError(`${kernel}: ${(e as Error).message}`);
  }
  mkdirSync(dirname(out), { recursive: true });
  if (!existsSync(out)) writeAtomic(out, loadable.data);
  return { kernel: out, initrd, arch: loadable.arch };
}
