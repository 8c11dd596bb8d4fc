import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { appendToSquashfs, checkSystemImage, squash } from '../../src/image/squashfs.js';
import { fixtureKernel } from '../helpers/fixture.js';

const work = mkdtempSync(join(tmpdir(), 'vmstub-sq-'));
after(() => rmSync(work, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

test('SOURCE_DATE_EPOCH makes two squashes of the same tree byte-identical', async () => {
  const src = tree('repro', { 'etc/hostname': 'stub\n', 'usr/bin/tool': '#!/bin/sh\n' });
  const opts = { compression: 'zstd' as const, level: 3, blockSize: '128K' };
  process.env.SOURCE_DATE_EPOCH = '1700000000';
  try {
    await squash(src, join(work, 'a.sqfs'), opts);
    writeFileSync(join(src, 'etc', 'hostname'), 'stub\n'); // same content, a new modification time
    await squash(src, join(work, 'b.sqfs'), opts);
  } finally {
    delete process.env.SOURCE_DATE_EPOCH;
  }
  assert.ok(readFileSync(join(work, 'a.sqfs')).equals(readFileSync(join(work, 'b.sqfs'))));
});

test('appending adds a directory at the image root and keeps what was there', async () => {
  const base = join(work, 'base.sqfs');
  await squash(tree('base', { 'etc/os-release': 'ID=debian\n' }), base, {
    compression: 'zstd',
    blockSize: '128K',
  });
  await appendToSquashfs(tree('extra', { 'vmstub/root/debian12.sh': '#!/bin/sh\n' }), base);
  const listing = execFileSync('unsquashfs', ['-d', '', '-lls', base], { encoding: 'utf8' });
  assert.match(listing, /\/etc\/os-release\n/);
  assert.match(listing, /\/vmstub\/root\/debian12\.sh\n/);
});

test('sanity checks: too small, no kernel, no initramfs, wrong architecture; a real kernel passes', async () => {
  const small = join(work, 'small.sqfs');
  await squash(tree('small', { 'boot/readme': 'x' }), small, { compression: 'zstd', blockSize: '128K' });
  await assert.rejects(checkSystemImage(small, 'x86_64'), /implausibly small/);
  await assert.rejects(checkSystemImage(small, 'x86_64', 0), /has no boot\/kernel/);

  const kernel = fixtureKernel();
  const dir = join(work, 'sys');
  mkdirSync(join(dir, 'boot'), { recursive: true });
  writeFileSync(join(dir, 'boot', 'vmlinuz-1'), readFileSync(kernel.vmlinuz));
  symlinkSync('vmlinuz-1', join(dir, 'boot', 'kernel'));
  const noInitrd = join(work, 'noinitrd.sqfs');
  await squash(dir, noInitrd, { compression: 'zstd', blockSize: '128K' });
  await assert.rejects(checkSystemImage(noInitrd, 'x86_64', 0), /has no boot\/initramfs/);

  writeFileSync(join(dir, 'boot', 'initrd-1'), 'initrd');
  symlinkSync('/boot/initrd-1', join(dir, 'boot', 'initramfs'));
  const good = join(work, 'good.sqfs');
  await squash(dir, good, { compression: 'zstd', blockSize: '128K' });
  await checkSystemImage(good, 'x86_64', 0);
  await assert.rejects(checkSystemImage(good, 'aarch64', 0), /boot\/kernel is not an aarch64 kernel/);
});
