/**
 * A fixture "installed system" for the boot handoff: Debian's cloud kernel and a busybox initramfs that
 * prints a marker and its command line, then powers off, laid out as Debian lays out /boot, and disk
 * images holding it, made with mkfs alone (no mounting, so no root or loop devices are needed).
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxInitramfs, fixtureKernel, testCacheDir, type FixtureKernel } from './fixture.js';

export const INSTALLED_MARKER = 'INSTALLED-SYSTEM-BOOTED';

const INSTALLED_INIT = `#!/bin/sh
/bin/busybox --install -s /bin
mkdir -p /proc
mount -t proc proc /proc
echo "${INSTALLED_MARKER}"
echo "INSTALLED-CMDLINE: $(cat /proc/cmdline)"
poweroff -f
`;

/** Debian's layout: versioned files in /boot, absolute default links at the root, an fstab mounting /. */
export function installedTree(fsType: string, parts: InstalledParts = hostParts()): string {
  const { kernel } = parts;
  const v = kernel.version;
  const dir = mkdtempSync(join(tmpdir(), 'installed-'));
  mkdirSync(join(dir, 'boot'));
  mkdirSync(join(dir, 'etc'));
  copyFileSync(kernel.vmlinuz, join(dir, 'boot', parts.kernelName));
  const initrd = join(testCacheDir(), `installed-initrd-${v}.img`);
  buildBusyboxInitramfs(kernel, initrd, INSTALLED_INIT, [], parts.busybox);
  copyFileSync(initrd, join(dir, 'boot', `initrd.img-${v}`));
  symlinkSync(`/boot/${parts.kernelName}`, join(dir, parts.kernelName.replace(/-.*$/, '')));
  symlinkSync(`/boot/initrd.img-${v}`, join(dir, 'initrd.img'));
  writeFileSync(join(dir, 'etc', 'fstab'), `LABEL=installed / ${fsType} defaults 0 1\n`);
  return dir;
}

/** What the fixture system is made of: a Debian kernel as /boot names it, and a static busybox. */
export interface InstalledParts {
  kernel: FixtureKernel;
  kernelName: string;
  busybox: string;
}

function hostParts(): InstalledParts {
  const kernel = fixtureKernel();
  return { kernel, kernelName: `vmlinuz-${kernel.version}`, busybox: '/bin/busybox' };
}

/**
 * The parts for another architecture, from its stub image: the Debian kernel in its /boot
 * (vmlinuz-V on arm64, vmlinux-V on riscv64) and its busybox-static.
 */
export function partsFromStub(stub: string): InstalledParts {
  const dir = mkdtempSync(join(tmpdir(), 'stub-parts-'));
  execFileSync('unsquashfs', [
    '-q',
    '-n',
    '-no-xattrs',
    '-d',
    join(dir, 'root'),
    stub,
    'boot',
    'usr/bin/busybox',
  ]);
  const root = join(dir, 'root');
  const kernelName = readdirSync(join(root, 'boot')).find((f) => /^vmlinu[xz]-/.test(f));
  if (!kernelName) throw new Error(`${stub} has no /boot/vmlinu[xz]-VERSION`);
  const version = kernelName.replace(/^vmlinu[xz]-/, '');
  mkdirSync(join(root, 'lib', 'modules', version), { recursive: true });
  writeFileSync(join(root, 'lib', 'modules', version, 'modules.dep'), '');
  return {
    kernel: { version, vmlinuz: join(root, 'boot', kernelName), root },
    kernelName,
    busybox: join(root, 'usr', 'bin', 'busybox'),
  };
}

/** An mkfs.xfs prototype file describing a directory tree (mkfs.xfs(8), "-p protofile"). */
export function xfsProtofile(dir: string): string {
  const lines = ['/dev/null', '0 0', 'd--755 0 0'];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const perm = (st.mode & 0o777).toString(8).padStart(3, '0');
      if (st.isSymbolicLink()) lines.push(`${name} l--777 0 0 ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        lines.push(`${name} d--${perm} 0 0`);
        walk(p);
        lines.push('$');
      } else lines.push(`${name} ---${perm} 0 0 ${p}`);
    }
  };
  walk(dir);
  lines.push('$');
  return lines.join('\n') + '\n';
}

/** A raw disk image with one filesystem over the whole disk, holding the tree; returns its UUID. */
export function filesystemImage(
  fsType: 'xfs' | 'btrfs' | 'ext4',
  tree: string | undefined,
  out: string,
  size = 512 * 1024 * 1024,
): string {
  writeFileSync(out, '');
  truncateSync(out, size);
  if (fsType === 'xfs') {
    const args = ['-q', '-L', 'installed'];
    if (tree) {
      const proto = join(mkdtempSync(join(tmpdir(), 'proto-')), 'proto');
      writeFileSync(proto, xfsProtofile(tree));
      args.push('-p', proto);
    }
    execFileSync('mkfs.xfs', [...args, out]);
  } else if (fsType === 'btrfs') {
    execFileSync('mkfs.btrfs', ['-q', '-L', 'installed', ...(tree ? ['--rootdir', tree] : []), out]);
  } else {
    execFileSync('mkfs.ext4', ['-q', '-L', 'installed', ...(tree ? ['-d', tree] : []), out]);
  }
  return execFileSync('blkid', ['-p', '-s', 'UUID', '-o', 'value', out], { encoding: 'utf8' }).trim();
}
