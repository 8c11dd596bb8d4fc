import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseImageCmdline, parseSquashfsListing, resolveInImage } from '../../src/vm/system-image.js';

const listing = `drwxr-xr-x root/root                27 2026-11-22 02:13 
drwxr-xr-x root/root                57 2026-11-22 02:13 /boot
lrwxrwxrwx root/root                15 2026-11-22 02:13 /boot/abs -> /boot/vmlinuz-6.1
lrwxrwxrwx root/root                 9 2026-11-22 02:13 /boot/kernel -> vmlinuz-6.1
lrwxrwxrwx root/root                 9 2026-11-22 02:13 /boot/initramfs -> ../usr/lib/initrd.img
lrwxrwxrwx root/root                 9 2026-11-22 02:13 /boot/chain -> kernel
lrwxrwxrwx root/root                 9 2026-11-22 02:13 /boot/loop -> loop2
lrwxrwxrwx root/root                 9 2026-11-22 02:13 /boot/loop2 -> loop
lrwxrwxrwx root/root                 9 2026-11-22 02:13 /boot/dangling -> vmlinuz-9
lrwxrwxrwx root/root                 9 2026-11-22 02:13 /boot/escape -> ../../../etc/passwd
-rw-r--r-- root/root           8123456 2026-11-22 02:13 /boot/vmlinuz-6.1
-rw-r--r-- root/root              1234 2026-11-22 02:13 /usr/lib/initrd.img
drwxr-xr-x root/root                 3 2026-11-22 02:13 /boot/grub
`;

test('listing: types, sizes, link targets', () => {
  const e = parseSquashfsListing(listing);
  assert.deepEqual(e.get('/boot/kernel'), { type: 'link', size: 9, target: 'vmlinuz-6.1' });
  assert.deepEqual(e.get('/boot/vmlinuz-6.1'), { type: 'file', size: 8123456, target: undefined });
  assert.equal(e.get('/boot/grub')?.type, 'dir');
  assert.equal(e.get('/')?.type, 'dir');
});

test('symlinks resolve inside the image: relative, absolute, chained; loops and dangling links do not', () => {
  const e = parseSquashfsListing(listing);
  const cases: [string, string | undefined][] = [
    ['/boot/kernel', '/boot/vmlinuz-6.1'],
    ['/boot/abs', '/boot/vmlinuz-6.1'],
    ['/boot/chain', '/boot/vmlinuz-6.1'],
    ['/boot/initramfs', '/usr/lib/initrd.img'],
    ['/boot/loop', undefined],
    ['/boot/dangling', undefined],
    ['/boot/escape', undefined],
    ['/boot/grub', undefined],
    ['/boot/missing', undefined],
  ];
  for (const [path, want] of cases) assert.equal(resolveInImage(path, e), want, path);
});

test('boot/cmdline: comments and blank lines dropped, lines joined, empty means none', () => {
  assert.equal(parseImageCmdline('quiet lsm=yama\n'), 'quiet lsm=yama');
  assert.equal(parseImageCmdline('# the stub\nquiet\n\n  loglevel=3  \n'), 'quiet loglevel=3');
  assert.equal(parseImageCmdline('# nothing\n\n'), undefined);
});
