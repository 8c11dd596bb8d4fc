import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { GUEST_GROW_SCRIPT, grownSize } from '../../src/vm/disk-grow.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

test('disk grow sizes: a new size, or +SIZE on top of what it is; never less', () => {
  assert.equal(grownSize(8 * GiB, '20G'), 20 * GiB);
  assert.equal(grownSize(8 * GiB, '+4G'), 12 * GiB);
  assert.equal(grownSize(8 * GiB, ' +512M '), 8 * GiB + 512 * MiB);
  assert.equal(grownSize(8 * GiB, '8G'), 8 * GiB, 'the same size is no change, not an error');
  assert.equal(grownSize(1000, '+1K'), 2048, 'rounded up to whole 512-byte sectors');
  assert.throws(
    () => grownSize(8 * GiB, '4G'),
    /the disk is 8 GiB already; vmstub never shrinks a disk \(asked for 4 GiB\)/,
  );
  assert.throws(() => grownSize(8 * GiB, '+0G'), /must be larger than zero/);
  assert.throws(() => grownSize(8 * GiB, '+4'), /needs a unit/);
  assert.throws(() => grownSize(8 * GiB, '-1G'), /is not a size/);
});

test('the script the guest agent runs is valid sh', () => {
  const r = spawnSync('sh', ['-n', '-c', GUEST_GROW_SCRIPT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
