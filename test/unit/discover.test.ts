import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import {
  findInstalledKernel,
  fstabHasRoot,
  handoffCommandLine,
  parseBlsEntry,
  resolveInTree,
} from '../../src/boot/discover.js';
import { parseBlkid, readOnlyMountOptions } from '../../src/boot/handoff.js';
import { rpmvercmp } from '../../src/util/version.js';

type Node = string | { link: string } | { file: string; mtime: number };

/** Builds a tree: 'path': content | {link} | {file, mtime (seconds ago)}. */
function tree(spec: Record<string, Node>): string {
  const root = mkdtempSync(join(tmpdir(), 'boot-'));
  for (const [path, node] of Object.entries(spec)) {
    const p = join(root, path);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof node === 'string') writeFileSync(p, node);
    else if ('link' in node) symlinkSync(node.link, p);
    else {
      writeFileSync(p, node.file);
      const t = Date.now() / 1000 - node.mtime;
      utimesSync(p, t, t);
    }
  }
  return root;
}

interface Layout {
  name: string;
  spec: Record<string, Node>;
  /** Paths inside the tree, or undefined when nothing should be found. */
  expect?: { kernel: string; initrds: string[]; source: string; options?: string };
}

const DEB = '6.1.0-56-cloud-amd64';
const DEB_OLD = '6.1.0-50-cloud-amd64';
const EL = '5.14.0-427.13.1.el9_4.x86_64';
const EL_OLD = '5.14.0-70.13.1.el9_0.x86_64';

const layouts: Layout[] = [
  {
    name: 'Debian: /vmlinuz and /initrd.img, relative links, an older kernel and .old links beside',
    spec: {
      [`boot/vmlinuz-${DEB}`]: 'k',
      [`boot/initrd.img-${DEB}`]: 'i',
      [`boot/vmlinuz-${DEB_OLD}`]: 'k',
      [`boot/initrd.img-${DEB_OLD}`]: 'i',
      vmlinuz: { link: `boot/vmlinuz-${DEB}` },
      'initrd.img': { link: `boot/initrd.img-${DEB}` },
      'vmlinuz.old': { link: `boot/vmlinuz-${DEB_OLD}` },
      'initrd.img.old': { link: `boot/initrd.img-${DEB_OLD}` },
      'etc/fstab': '',
    },
    expect: { kernel: `/boot/vmlinuz-${DEB}`, initrds: [`/boot/initrd.img-${DEB}`], source: 'symlink' },
  },
  {
    name: 'Debian: absolute links resolve inside the installed tree',
    spec: {
      [`boot/vmlinuz-${DEB}`]: 'k',
      [`boot/initrd.img-${DEB}`]: 'i',
      vmlinuz: { link: `/boot/vmlinuz-${DEB}` },
      'initrd.img': { link: `/boot/initrd.img-${DEB}` },
    },
    expect: { kernel: `/boot/vmlinuz-${DEB}`, initrds: [`/boot/initrd.img-${DEB}`], source: 'symlink' },
  },
  {
    name: 'an absolute link to something only the stub has is not followed out of the tree',
    spec: {
      vmlinuz: { link: '/etc/hostname' },
      [`boot/vmlinuz-${DEB}`]: 'k',
      [`boot/initrd.img-${DEB}`]: 'i',
    },
    expect: { kernel: `/boot/vmlinuz-${DEB}`, initrds: [`/boot/initrd.img-${DEB}`], source: 'scan' },
  },
  {
    name: 'Ubuntu: /boot/vmlinuz and /boot/initrd.img',
    spec: {
      'boot/vmlinuz-6.8.0-31-generic': 'k',
      'boot/initrd.img-6.8.0-31-generic': 'i',
      'boot/vmlinuz': { link: 'vmlinuz-6.8.0-31-generic' },
      'boot/initrd.img': { link: 'initrd.img-6.8.0-31-generic' },
    },
    expect: {
      kernel: '/boot/vmlinuz-6.8.0-31-generic',
      initrds: ['/boot/initrd.img-6.8.0-31-generic'],
      source: 'symlink',
    },
  },
  {
    name: 'a broken default link falls back to the newest kernel by version',
    spec: {
      vmlinuz: { link: 'boot/vmlinuz-9.9.9' },
      [`boot/vmlinuz-${DEB}`]: 'k',
      [`boot/initrd.img-${DEB}`]: 'i',
      [`boot/vmlinuz-${DEB_OLD}`]: 'k',
      [`boot/initrd.img-${DEB_OLD}`]: 'i',
    },
    expect: { kernel: `/boot/vmlinuz-${DEB}`, initrds: [`/boot/initrd.img-${DEB}`], source: 'scan' },
  },
  {
    name: 'Fedora/EL without entries: by version, not by time; the rescue kernel (newest by time) and .hmac skipped',
    spec: {
      [`boot/vmlinuz-${EL}`]: { file: 'k', mtime: 5000 },
      [`boot/initramfs-${EL}.img`]: 'i',
      [`boot/vmlinuz-${EL_OLD}`]: { file: 'k', mtime: 10 },
      [`boot/initramfs-${EL_OLD}.img`]: 'i',
      'boot/vmlinuz-0-rescue-1d2c3b4a': { file: 'k', mtime: 1 },
      'boot/initramfs-0-rescue-1d2c3b4a.img': 'i',
      [`boot/.vmlinuz-${EL}.hmac`]: 'h',
    },
    expect: { kernel: `/boot/vmlinuz-${EL}`, initrds: [`/boot/initramfs-${EL}.img`], source: 'scan' },
  },
  {
    name: 'Boot Loader Specification entries rule, with their options; the rescue entry is skipped',
    spec: {
      [`boot/vmlinuz-${EL}`]: 'k',
      [`boot/initramfs-${EL}.img`]: 'i',
      [`boot/vmlinuz-${EL_OLD}`]: 'k',
      [`boot/initramfs-${EL_OLD}.img`]: 'i',
      'boot/vmlinuz-0-rescue-1d2c': 'k',
      'boot/initramfs-0-rescue-1d2c.img': 'i',
      [`boot/loader/entries/1d2c-${EL}.conf`]: `title AlmaLinux (${EL})\nversion ${EL}\nlinux /vmlinuz-${EL}\ninitrd /initramfs-${EL}.img\noptions root=UUID=0b1e ro crashkernel=1G-4G:192M\n`,
      [`boot/loader/entries/1d2c-${EL_OLD}.conf`]: `title AlmaLinux (${EL_OLD})\nversion ${EL_OLD}\nlinux /vmlinuz-${EL_OLD}\ninitrd /initramfs-${EL_OLD}.img\noptions root=UUID=0b1e ro\n`,
      'boot/loader/entries/1d2c-0-rescue.conf':
        'title AlmaLinux (0-rescue-1d2c)\nversion 0-rescue-1d2c\nlinux /vmlinuz-0-rescue-1d2c\ninitrd /initramfs-0-rescue-1d2c.img\noptions root=UUID=0b1e ro\n',
    },
    expect: {
      kernel: `/boot/vmlinuz-${EL}`,
      initrds: [`/boot/initramfs-${EL}.img`],
      source: 'bls',
      options: 'root=UUID=0b1e ro crashkernel=1G-4G:192M',
    },
  },
  {
    name: 'EL8 entries: options $kernelopts from grubenv; several initrds',
    spec: {
      'boot/vmlinuz-4.18.0-553.el8.x86_64': 'k',
      'boot/initramfs-4.18.0-553.el8.x86_64.img': 'i',
      'boot/early_ucode.cpio': 'u',
      'boot/grub2/grubenv': '# GRUB Environment Block\nkernelopts=root=UUID=77aa ro net.ifnames=0\n#####',
      'boot/loader/entries/x-4.18.0-553.el8.x86_64.conf':
        'title Rocky\nversion 4.18.0-553.el8.x86_64\nlinux /vmlinuz-4.18.0-553.el8.x86_64\ninitrd /early_ucode.cpio /initramfs-4.18.0-553.el8.x86_64.img\noptions $kernelopts\n',
    },
    expect: {
      kernel: '/boot/vmlinuz-4.18.0-553.el8.x86_64',
      initrds: ['/boot/early_ucode.cpio', '/boot/initramfs-4.18.0-553.el8.x86_64.img'],
      source: 'bls',
      options: 'root=UUID=77aa ro net.ifnames=0',
    },
  },
  {
    name: 'Gentoo: kernel-V and vmlinuz-V with initramfs-V.img; .old skipped',
    spec: {
      'boot/kernel-6.12.1-gentoo-dist': 'k',
      'boot/initramfs-6.12.1-gentoo-dist.img': 'i',
      'boot/vmlinuz-6.6.30-gentoo-dist': 'k',
      'boot/initramfs-6.6.30-gentoo-dist.img': 'i',
      'boot/kernel-6.13.0-gentoo-dist.old': 'k',
    },
    expect: {
      kernel: '/boot/kernel-6.12.1-gentoo-dist',
      initrds: ['/boot/initramfs-6.12.1-gentoo-dist.img'],
      source: 'scan',
    },
  },
  {
    name: 'several versions: 6.10 is newer than 6.9 although older on disk',
    spec: {
      'boot/vmlinuz-6.9.12': { file: 'k', mtime: 10 },
      'boot/initrd.img-6.9.12': 'i',
      'boot/vmlinuz-6.10.3': { file: 'k', mtime: 9999 },
      'boot/initrd.img-6.10.3': 'i',
    },
    expect: { kernel: '/boot/vmlinuz-6.10.3', initrds: ['/boot/initrd.img-6.10.3'], source: 'scan' },
  },
  {
    name: 'missing initramfs: the newest kernel that has one wins',
    spec: { 'boot/vmlinuz-6.2.0': 'k', 'boot/vmlinuz-6.1.0': 'k', 'boot/initramfs-6.1.0.img': 'i' },
    expect: { kernel: '/boot/vmlinuz-6.1.0', initrds: ['/boot/initramfs-6.1.0.img'], source: 'scan' },
  },
  {
    name: 'no kernel has an initramfs: the newest boots without one',
    spec: { 'boot/vmlinuz-6.2.0': 'k', 'boot/vmlinuz-6.1.0': 'k' },
    expect: { kernel: '/boot/vmlinuz-6.2.0', initrds: [], source: 'scan' },
  },
  { name: 'an empty /boot', spec: { 'boot/grub/grub.cfg': '' } },
  { name: 'no /boot at all (not an installed system)', spec: { 'etc/hostname': 'x' } },
];

for (const l of layouts) {
  test(`discovery: ${l.name}`, () => {
    const root = tree(l.spec);
    const found = findInstalledKernel(root);
    if (!l.expect) {
      assert.equal(found, undefined);
      return;
    }
    assert.ok(found, 'a kernel should be found');
    const rel = (p: string) => p.slice(root.length);
    assert.equal(rel(found.kernel), l.expect.kernel);
    assert.deepEqual(found.initrds.map(rel), l.expect.initrds);
    assert.equal(found.source, l.expect.source);
    assert.equal(found.options, l.expect.options);
  });
}

test('resolveInTree: .. cannot climb out, link loops end', () => {
  const root = tree({
    'a/b': 'x',
    loop1: { link: 'loop2' },
    loop2: { link: 'loop1' },
    up: { link: '../../../a/b' },
  });
  assert.equal(resolveInTree(root, '/up'), join(root, 'a', 'b'));
  assert.equal(resolveInTree(root, '/loop1'), undefined);
  assert.equal(resolveInTree(root, '/../../a/b'), join(root, 'a', 'b'));
});

test('BLS entry parsing: repeated initrd and options lines', () => {
  const e = parseBlsEntry(
    'x',
    '# comment\ntitle T\nlinux /vmlinuz\ninitrd /a /b\ninitrd /c\noptions one\noptions two\nsort-key fedora\n',
  );
  assert.deepEqual(e, {
    id: 'x',
    title: 'T',
    linux: '/vmlinuz',
    initrd: ['/a', '/b', '/c'],
    options: ['one', 'two'],
    sortKey: 'fedora',
  });
});

test('fstab root entries', () => {
  assert.equal(fstabHasRoot('UUID=1 / xfs defaults 0 0\n'), true);
  assert.equal(fstabHasRoot('# UUID=1 / xfs defaults 0 0\nUUID=2 /home xfs defaults 0 0\n'), false);
  assert.equal(fstabHasRoot(''), false);
});

const STUB =
  'console=ttyS0,115200n8 quiet lsm=landlock,lockdown,yama,integrity root=/dev/vda initrd=x BOOT_IMAGE=y net.ifnames=0 vmstub.debug';
const STUB_ARGS = ['quiet', 'lsm=landlock,lockdown,yama,integrity'];

test('command line: stub args and root go, console and user args stay, root by UUID, rw without an fstab root', () => {
  assert.equal(
    handoffCommandLine({
      stubCmdline: STUB,
      stubImageArgs: STUB_ARGS,
      root: { uuid: 'c0ffee', device: '/dev/vdb', fsType: 'xfs' },
      fstabHasRoot: false,
    }),
    'root=UUID=c0ffee rootfstype=xfs rw console=ttyS0,115200n8 net.ifnames=0',
  );
  assert.equal(
    handoffCommandLine({
      stubCmdline: STUB,
      stubImageArgs: STUB_ARGS,
      root: { uuid: 'c0ffee', device: '/dev/vdb', fsType: 'btrfs' },
      fstabHasRoot: true,
    }),
    'root=UUID=c0ffee rootfstype=btrfs ro console=ttyS0,115200n8 net.ifnames=0',
  );
  assert.equal(
    handoffCommandLine({
      stubCmdline: 'console=hvc0',
      stubImageArgs: [],
      root: { device: 'fs', fsType: 'virtiofs' },
      fstabHasRoot: false,
    }),
    'root=fs rootfstype=virtiofs rw console=hvc0',
  );
});

test('command line: BLS options are authoritative; LUKS adds rd.luks.uuid', () => {
  assert.equal(
    handoffCommandLine({
      stubCmdline: STUB,
      stubImageArgs: STUB_ARGS,
      root: { uuid: 'c0ffee', device: '/dev/vdb', fsType: 'xfs', luksUuid: 'a11ce' },
      fstabHasRoot: true,
      blsOptions: 'root=UUID=0b1e ro console=tty0 rhgb',
    }),
    'root=UUID=0b1e ro rhgb rootfstype=xfs rd.luks.uuid=a11ce console=ttyS0,115200n8 net.ifnames=0',
  );
});

test('read-only mounts never replay a journal; blkid export parsing', () => {
  assert.equal(readOnlyMountOptions('xfs'), 'ro,norecovery');
  assert.equal(readOnlyMountOptions('ext4'), 'ro,noload');
  assert.equal(readOnlyMountOptions('btrfs'), 'ro,rescue=nologreplay');
  assert.equal(readOnlyMountOptions('vfat'), 'ro');
  assert.deepEqual(parseBlkid('DEVNAME=/dev/vdb\nUUID=1234-ab\nTYPE=xfs\n'), {
    DEVNAME: '/dev/vdb',
    UUID: '1234-ab',
    TYPE: 'xfs',
  });
});

test('rpmvercmp: digits, letters, tilde, caret, leading zeros', () => {
  const cases: [string, string, number][] = [
    ['1.0', '1.0', 0],
    ['1.0', '2.0', -1],
    ['2.0.1', '2.0', 1],
    ['6.10.0', '6.9.0', 1],
    ['5.14.0-427.el9', '5.14.0-70.el9', 1],
    ['001', '1', 0],
    ['1.01', '1.1', 0],
    ['1.0a', '1.0', 1],
    ['1.0a', '1.0.1', -1],
    ['a', 'b', -1],
    ['1.0~rc1', '1.0', -1],
    ['1.0~rc1', '1.0~rc2', -1],
    ['1.0~', '1.0', -1],
    ['1.0^git1', '1.0', 1],
    ['1.0^git1', '1.0.1', -1],
    ['1.0^', '1.0', 1],
    ['1_0', '1.0', 0],
    ['6.1.0-56-cloud-amd64', '6.1.0-9-cloud-amd64', 1],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(rpmvercmp(a, b), want, `${a} vs ${b}`);
    assert.equal(rpmvercmp(b, a), want === 0 ? 0 : -want, `${b} vs ${a}`);
  }
});
