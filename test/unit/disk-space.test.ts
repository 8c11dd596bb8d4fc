/** Whether an install fits its disk: the floors against the real mkfs tools, the refusals, a filled disk told apart. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  FILESYSTEM_MIN_BYTES,
  diskFullNote,
  filledUp,
  refuseSmallDisk,
} from '../../src/installer/disk-space.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

test('the floors are what mkfs.xfs and mkfs.btrfs accept: refused a MiB below, made at the floor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'disk-space-'));
  try {
    const mkfs = { xfs: ['mkfs.xfs', '-q', '-f'], btrfs: ['mkfs.btrfs', '-q', '-f'] };
    for (const [fs, argv] of Object.entries(mkfs)) {
      const floor = FILESYSTEM_MIN_BYTES[fs as keyof typeof mkfs];
      for (const [bytes, made] of [
        [floor - MiB, false],
        [floor, true],
      ] as const) {
        const image = join(dir, `${fs}-${bytes}.img`);
        writeFileSync(image, '');
        truncateSync(image, bytes);
        const r = spawnSync(argv[0]!, [...argv.slice(1), image], { encoding: 'utf8' });
        assert.ok(!r.error, `${argv[0]} is needed here: ${r.error?.message}`);
        assert.equal(r.status === 0, made, `${fs} on ${bytes} bytes: ${r.stderr}`);
        rmSync(image);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a disk below the filesystem floor, or below the floor plus a host-bootstrapped root, is refused in one line', () => {
  const base = { filesystem: 'xfs' as const, distro: 'debian12' };
  assert.throws(
    () => refuseSmallDisk({ ...base, diskBytes: 256 * MiB }),
    /^VmstubError: a 256 MiB disk is too small for a xfs root \(mkfs needs at least 300 MiB\)$/,
  );
  assert.doesNotThrow(() => refuseSmallDisk({ ...base, filesystem: 'btrfs', diskBytes: 256 * MiB }));
  assert.doesNotThrow(() => refuseSmallDisk({ ...base, filesystem: 'ext4', diskBytes: 64 * MiB }));
  assert.throws(
    () => refuseSmallDisk({ ...base, diskBytes: 512 * MiB, rootBytes: 403 * MiB }, 'web1'),
    (e: Error) =>
      e.message ===
        'a 512 MiB disk is too small for this debian12 root: its files take 403 MiB, and a xfs filesystem needs 300 MiB besides (at least 703 MiB); grow it first: vmstub disk grow web1 SIZE' &&
      !e.message.includes('\n'),
  );
  assert.doesNotThrow(() => refuseSmallDisk({ ...base, diskBytes: 8 * GiB, rootBytes: 403 * MiB }));
});

test('a failure is the disk filling only when the filesystem is (nearly) full', () => {
  const enospc = 'mmdebstrap failed (exit 25): E: write error: No space left on device';
  const space = (freeBytes: number) => ({ sizeBytes: GiB, freeBytes });
  assert.equal(filledUp(enospc, space(20 * MiB)), true);
  // The stub's own memory-backed directories filled, not the disk: plenty left on it.
  assert.equal(filledUp(enospc, space(600 * MiB)), false);
  // What a 600 MiB disk's pass 2 printed here (dnf's reason is its last line): rpm counts before it writes.
  const pass2 = [
    'chroot exited with status 1: Error: Could not run transaction.',
    "Transaction couldn't start:",
    'installing package sudo-1.9.13p3-1+deb12u4.x86_64 needs 556KB more space on the / filesystem',
    'The downloaded packages were saved in cache until the next successful transaction.',
    'Error: Could not run transaction.',
  ].join('\n');
  assert.equal(filledUp(pass2, space(200 * MiB)), true);
  assert.equal(filledUp(pass2.split('\n')[0]!, space(200 * MiB)), false, 'the reason alone does not say');
  // rpm and dnf count before they write: they say so with room still free.
  for (const said of [
    'Disk Requirements: At least 312MB more space needed on the / filesystem.',
    'installing package kernel-core-5.14.0-1.el9.x86_64 needs 87MB more space on the / filesystem',
  ])
    assert.equal(filledUp(said, space(300 * MiB)), true, said);
  // Whatever the tool said, a disk with nothing left filled up.
  assert.equal(filledUp('tar: Exiting with failure status due to previous errors', space(4 * MiB)), true);
  assert.equal(filledUp('tar: Exiting with failure status due to previous errors', space(300 * MiB)), false);
  assert.equal(diskFullNote(space(4 * MiB)), "the new root's filesystem is full (1020 MiB of 1 GiB used)");
});
