import { gunzipSync } from 'node:zlib';
import type { Arch } from '../util/arch.js';

export type KernelFormat =
  | { kind: 'bzimage'; arch: 'x86_64' }
  | { kind: 'arm64-image'; arch: 'aarch64' }
  | { kind: 'riscv-image'; arch: 'riscv64' }
  | { kind: 'efi-zboot'; compression: string; payloadOffset: number; payloadSize: number }
  | { kind: 'gzip' }
  | { kind: 'unknown' };

const ascii = (b: Buffer, at: number, len: number): string => b.subarray(at, at + len).toString('latin1');

/** What kind of kernel image a file holds, from its header (the first 4 KiB are enough). */
export function detectKernelFormat(head: Buffer): KernelFormat {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return { kind: 'gzip' };
  // EFI zboot (arm64/riscv64 distribution kernels): "MZ", then "zimg", payload offset/size, compression name.
  if (ascii(head, 0, 2) === 'MZ' && ascii(head, 4, 4) === 'zimg') {
    return {
      kind: 'efi-zboot',
      payloadOffset: head.readUInt32LE(8),
      payloadSize: head.readUInt32LE(12),
      compression: ascii(head, 24, 8).replace(/\0.*$/, ''),
    };
  }
  if (ascii(head, 0x202, 4) === 'HdrS') return { kind: 'bzimage', arch: 'x86_64' };
  if (ascii(head, 0x38, 4) === 'ARM\x64') return { kind: 'arm64-image', arch: 'aarch64' };
  if (ascii(head, 0x30, 5) === 'RISCV' || ascii(head, 0x34, 4) === 'RSC\x05')
    return { kind: 'riscv-image', arch: 'riscv64' };
  return { kind: 'unknown' };
}

export function kernelArch(format: KernelFormat): Arch | undefined {
  return 'arch' in format ? format.arch : undefined;
}

/**
 * The payload of an EFI zboot image, still compressed. zstd payloads are returned for the caller to
 * decompress with the zstd tool; gzip ones are inflated here.
 */
export function unpackZboot(
  image: Buffer,
  format: Extract<KernelFormat, { kind: 'efi-zboot' }>,
): { data: Buffer; compressed?: 'zstd' | 'xz' | 'lzma' | 'lz4' } {
  const payload = image.subarray(format.payloadOffset, format.payloadOffset + format.payloadSize);
  if (format.compression === 'gzip') return { data: gunzipSync(payload) };
  if (
    format.compression === 'zstd' ||
    format.compression === 'xzkern' ||
    format.compression === 'lzma' ||
    format.compression === 'lz4'
  ) {
    const c = format.compression === 'xzkern' ? 'xz' : format.compression;
    return { data: payload, compressed: c as 'zstd' | 'xz' | 'lzma' | 'lz4' };
  }
  throw new Error(`EFI zboot kernel with unknown compression '${format.compression}'`);
}
