import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Sandbox } from '../helpers/cli.js';

const box = new Sandbox();
const dir = mkdtempSync(join(tmpdir(), 'vmstub-alloc-'));
after(() => {
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const qcow2Size = (path: string): number =>
  (
    JSON.parse(execFileSync('qemu-img', ['info', '--output=json', path], { encoding: 'utf8' })) as {
      'virtual-size': number;
    }
  )['virtual-size'];

test('a new raw image is sparse, private and exactly the size asked', () => {
  const disk = join(dir, 'a.img');
  const r = box.run(['allocate', disk, '8G']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${disk} created: 8 GiB raw, sparse\n`);
  const st = statSync(disk);
  assert.equal(st.size, 8 * 1024 ** 3);
  assert.ok(st.blocks * 512 < 1024 * 1024, `uses ${st.blocks * 512} bytes`);
  assert.equal(st.mode & 0o777, 0o600);
});

test('growing keeps the content; asking for less is refused and changes nothing', () => {
  const disk = join(dir, 'b.img');
  assert.equal(box.run(['allocate', disk, '1M']).code, 0);
  const fd = openSync(disk, 'r+');
  writeSync(fd, Buffer.from('KEEP-ME'), 0, 7, 4096);
  closeSync(fd);
  const grow = box.run(['allocate', disk, '2G']);
  assert.equal(grow.stdout, `${disk} grown from 1 MiB to 2 GiB (raw)\n`);
  const check = Buffer.alloc(7);
  const fd2 = openSync(disk, 'r');
  readSync(fd2, check, 0, 7, 4096);
  closeSync(fd2);
  assert.equal(check.toString(), 'KEEP-ME');
  const shrink = box.run(['allocate', disk, '1G']);
  assert.equal(shrink.code, 2);
  assert.equal(
    shrink.stderr,
    `vmstub: ${disk} is already 2 GiB; allocate never shrinks a disk (asked for 1 GiB)\n`,
  );
  assert.equal(statSync(disk).size, 2 * 1024 ** 3);
  assert.equal(box.run(['allocate', disk, '2G']).stdout, `${disk} is already 2 GiB (raw)\n`);
});

test('qcow2: created and grown with qemu-img; the format of an existing file is kept', () => {
  const disk = join(dir, 'c.qcow2');
  const r = box.run(['allocate', '--format', 'qcow2', '--json', disk, '1G']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    path: disk,
    format: 'qcow2',
    bytes: 1024 ** 3,
    action: 'created',
  });
  assert.equal(qcow2Size(disk), 1024 ** 3);
  assert.equal(box.run(['allocate', disk, '3G']).code, 0);
  assert.equal(qcow2Size(disk), 3 * 1024 ** 3);
  const wrong = box.run(['allocate', '--format', 'raw', disk, '4G']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /is a qcow2 image, not raw/);
  assert.equal(box.run(['allocate', disk, '2G']).code, 2);
});

test('bad targets', () => {
  const noDir = box.run(['allocate', join(dir, 'missing', 'x.img'), '1G']);
  assert.equal(noDir.code, 2);
  assert.match(noDir.stderr, /directory .*missing does not exist/);
  const notFile = box.run(['allocate', dir, '1G']);
  assert.equal(notFile.code, 2);
  assert.match(notFile.stderr, /is not a regular file/);
  const badFormat = box.run(['allocate', '--format', 'vmdk', join(dir, 'v.img'), '1G']);
  assert.equal(badFormat.code, 2);
  assert.match(badFormat.stderr, /--format 'vmdk' is not one of raw, qcow2/);
});
