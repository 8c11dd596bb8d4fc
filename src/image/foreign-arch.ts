/**
 * Building for another architecture runs that architecture's binaries (dpkg's scripts, the hook's
 * chroot commands) through qemu-user-static, registered with binfmt_misc. With the F flag the kernel
 * keeps the emulator open, so it works inside the image's root without being copied there.
 */
import { readFileSync } from 'node:fs';
import type { Arch } from '../util/arch.js';
import { VmstubError } from '../util/errors.js';

const BINFMT = '/proc/sys/fs/binfmt_misc';

/** What is wrong with this host's emulation of arch, or undefined when it can run arch's binaries. */
export function foreignArchProblem(arch: Arch, host: Arch | undefined, binfmt = BINFMT): string | undefined {
  if (arch === host) return undefined;
  let entry: string;
  try {
    entry = readFileSync(`${binfmt}/qemu-${arch}`, 'utf8');
  } catch {
    try {
      readFileSync(`${binfmt}/status`);
    } catch {
      return `building for ${arch} needs binfmt_misc, which is not mounted (mount -t binfmt_misc binfmt_misc ${binfmt})`;
    }
    return `building for ${arch} needs qemu-user-static registered with binfmt_misc (install Debian's qemu-user-static; in a container, register it by hand: docs/images.md)`;
  }
  if (!/^enabled/m.test(entry)) return `the binfmt_misc handler qemu-${arch} is disabled`;
  const flags = /^flags: *(\S*)/m.exec(entry)?.[1] ?? '';
  if (!flags.includes('F'))
    return `the binfmt_misc handler qemu-${arch} lacks the F flag (fix-binary), so it cannot run inside the image's root`;
  return undefined;
}

export function requireForeignArch(arch: Arch, host: Arch | undefined): void {
  const problem = foreignArchProblem(arch, host);
  if (problem) throw new VmstubError(problem);
}
