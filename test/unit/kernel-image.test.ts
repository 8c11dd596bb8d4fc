import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { detectKernelFormat, unpackZboot } from '../../src/boot/kernel-image.js';

function header(size = 4096): Buffer {
  return Buffer.alloc(size);
}

test('x86 bzImage, arm64 Image, RISC-V Image, gzip and unknown headers', () => {
  const bz = header();
  bz.write('HdrS', 0x202, 'latin1');
  assert.deepEqual(detectKernelFormat(bz), { kind: 'bzimage', arch: 'x86_64' });
  const arm = header();
  arm.write('ARM\x64', 0x38, 'latin1');
  assert.deepEqual(detectKernelFormat(arm), { kind: 'arm64-image', arch: 'aarch64' });
  const rv = header();
  rv.write('RSC\x05', 0x34, 'latin1');
  assert.deepEqual(detectKernelFormat(rv), { kind: 'riscv-image', arch: 'riscv64' });
  assert.deepEqual(detectKernelFormat(gzipSync(Buffer.from('x'))), { kind: 'gzip' });
  assert.deepEqual(detectKernelFormat(header()), { kind: 'unknown' });
});

test('EFI zboot: header fields, and a gzip payload unpacks to the inner image', () => {
  const inner = header();
  inner.write('ARM\x64', 0x38, 'latin1');
  const payload = gzipSync(inner);
  const image = Buffer.alloc(512 + payload.length);
  image.write('MZ', 0, 'latin1');
  image.write('zimg', 4, 'latin1');
  image.writeUInt32LE(512, 8);
  image.writeUInt32LE(payload.length, 12);
  image.write('gzip', 24, 'latin1');
  payload.copy(image, 512);
  const format = detectKernelFormat(image);
  assert.deepEqual(format, {
    kind: 'efi-zboot',
    payloadOffset: 512,
    payloadSize: payload.length,
    compression: 'gzip',
  });
  if (format.kind !== 'efi-zboot') throw new Error('unreachable');
  const out = unpackZboot(image, format);
  assert.equal(out.compressed, undefined);
  assert.deepEqual(detectKernelFormat(out.data), { kind: 'arm64-image', arch: 'aarch64' });

  image.write('zstd\0\0\0\0', 24, 'latin1');
  const z = detectKernelFormat(image);
  if (z.kind !== 'efi-zboot') throw new Error('unreachable');
  assert.equal(unpackZboot(image, z).compressed, 'zstd');
  image.write('bogus\0\0\0', 24, 'latin1');
  const b = detectKernelFormat(image);
  if (b.kind !== 'efi-zboot') throw new Error('unreachable');
  assert.throws(() => unpackZboot(image, b), /unknown compression 'bogus'/);
});
