import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  decodeBootExport,
  digestsLine,
  encodeBootExport,
  keepDirectBoot,
  readDirectBoot,
} from '../../src/boot/boot-export.js';

const kernel = { path: '/boot/vmlinux-6.12.57+deb13-riscv64', data: randomBytes(300_000) };
const initrd = { path: '/boot/initrd.img-6.12.57+deb13-riscv64', data: randomBytes(120_000) };
const cmdline = 'root=UUID=0c8e rootfstype=xfs ro console=ttyS0,115200n8';

test('boot export: what the stub writes, the host reads back byte for byte', () => {
  const got = decodeBootExport(encodeBootExport({ kernel, initrd }, cmdline))!;
  assert.equal(got.header.cmdline, cmdline);
  assert.equal(got.header.kernel.path, kernel.path);
  assert.ok(got.kernel!.equals(kernel.data));
  assert.ok(got.initrd!.equals(initrd.data));
  assert.equal(got.header.unchanged, false);
});

test('boot export: a kernel without an initramfs', () => {
  const got = decodeBootExport(encodeBootExport({ kernel }, cmdline))!;
  assert.equal(got.initrd, undefined);
  assert.ok(got.kernel!.equals(kernel.data));
});

test('boot export: nothing written is no export; cut short or changed is refused, saying which file', () => {
  assert.equal(decodeBootExport(Buffer.alloc(0)), undefined);
  const whole = encodeBootExport({ kernel, initrd }, cmdline);
  assert.throws(() => decodeBootExport(whole.subarray(0, whole.length - 1)), /initramfs .* cut short/);
  assert.throws(() => decodeBootExport(whole.subarray(0, 40)), /end inside their header/);
  const flipped = Buffer.from(whole);
  flipped[whole.indexOf(0x0a) + 10]! ^= 1;
  assert.throws(() => decodeBootExport(flipped), /kernel from the stub does not match its sha256/);
  assert.throws(() => decodeBootExport(Buffer.from('{"x":1}\n')), /unknown kind/);
});

test('boot export: with the host holding the same files, only the header crosses', () => {
  const first = decodeBootExport(encodeBootExport({ kernel, initrd }, cmdline))!;
  const digests = digestsLine(first.header.kernel.sha256, first.header.initrd!.sha256);
  const again = encodeBootExport({ kernel, initrd }, cmdline, digests);
  assert.equal(again.indexOf(0x0a), again.length - 1, 'a header line and nothing else');
  assert.equal(decodeBootExport(again)!.header.unchanged, true);
  const other = encodeBootExport({ kernel: { ...kernel, data: randomBytes(10) }, initrd }, cmdline, digests);
  assert.equal(decodeBootExport(other)!.header.unchanged, false);
});

test('direct boot files: kept owner-only, read back, and an unchanged export needs the same copy', (t) => {
  const work = mkdtempSync(join(tmpdir(), 'vmstub-direct-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const dir = join(work, 'kept', 'direct-boot');
  assert.equal(readDirectBoot(dir), undefined);
  const kept = keepDirectBoot(dir, decodeBootExport(encodeBootExport({ kernel, initrd }, cmdline))!);
  assert.ok(readFileSync(kept.kernel).equals(kernel.data));
  assert.ok(readFileSync(kept.initrd!).equals(initrd.data));
  assert.equal(statSync(kept.kernel).mode & 0o777, 0o600);
  assert.deepEqual(readDirectBoot(dir), kept);

  const unchanged = encodeBootExport({ kernel, initrd }, `${cmdline} quiet`, kept.digests);
  const again = keepDirectBoot(dir, decodeBootExport(unchanged)!);
  assert.equal(again.cmdline, `${cmdline} quiet`, 'the command line is the newest');
  assert.ok(readFileSync(again.kernel).equals(kernel.data));

  const elsewhere = join(work, 'elsewhere', 'direct-boot');
  assert.throws(() => keepDirectBoot(elsewhere, decodeBootExport(unchanged)!), /host has no such copy/);
  assert.equal(readDirectBoot(elsewhere), undefined);
});
