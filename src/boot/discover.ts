import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { rpmvercmp } from '../util/version.js';

/**
 * Resolves a path inside an installed system's tree, following symlinks component by component with
 * the tree as the root: an absolute link target means the installed system's /, never the stub's.
 * Returns the path on this machine of what it names, or undefined when it does not exist.
 */
export function resolveInTree(root: string, path: string): string | undefined {
  let parts = posix.normalize(`/${path}`).split('/').filter(Boolean);
  let resolved: string[] = [];
  for (let hops = 0; parts.length;) {
    const name = parts.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      resolved.pop();
      continue;
    }
    const here = join(root, ...resolved, name);
    let st;
    try {
      st = lstatSync(here);
    } catch {
      return undefined;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) return undefined;
      const target = readlinkSync(here);
      if (target.startsWith('/')) resolved = [];
      parts = [...target.split('/').filter(Boolean), ...parts];
      continue;
    }
    resolved.push(name);
  }
  return join(root, ...resolved);
}

/**
 * Left at the root of a target by an install that has not finished (vmstub's executor writes it as soon
 * as the bootstrap has put anything there, and removes it last): the handoff never starts such a system.
 */
export const UNFINISHED_INSTALL_MARK = '.vmstub-install-unfinished';

export const isUnfinishedInstall = (root: string): boolean => existsSync(join(root, UNFINISHED_INSTALL_MARK));

const isFile = (p: string | undefined): p is string =>
  p !== undefined && existsSync(p) && statSync(p).isFile();

export interface KernelChoice {
  /** Paths on this machine (inside the mounted tree). */
  kernel: string;
  initrds: string[];
  version?: string;
  /** The `options` of a Boot Loader Specification entry, which then rule the command line. */
  options?: string;
  source: 'bls' | 'symlink' | 'scan';
  /** The kernel's path as the installed system names it, for messages. */
  name: string;
}

const KERNEL_PREFIXES = ['vmlinuz-', 'kernel-', 'vmlinux-'];

/** Kernel files that are never the one to boot: rescue images, backups, signatures and checksums. */
export function isCandidateKernelName(name: string): boolean {
  if (name.startsWith('.')) return false;
  if (!KERNEL_PREFIXES.some((p) => name.startsWith(p))) return false;
  if (/\.(old|bak|sig|hmac|sha256|efi)$/.test(name) || name.includes('-rescue-')) return false;
  return true;
}

export function kernelVersionOf(name: string): string {
  const prefix = KERNEL_PREFIXES.find((p) => name.startsWith(p)) ?? '';
  return name.slice(prefix.length);
}

/** The names distributions give the initramfs of kernel VERSION (Debian, Fedora/EL, Gentoo, others). */
export function initramfsNames(version: string): string[] {
  return [
    `initrd.img-${version}`,
    `initramfs-${version}.img`,
    `initramfs-${version}`,
    `initrd-${version}.img`,
    `initrd-${version}`,
  ];
}

function findInitramfs(root: string, version: string): string | undefined {
  for (const dir of ['/boot', '/']) {
    for (const name of initramfsNames(version)) {
      const p = resolveInTree(root, posix.join(dir, name));
      if (isFile(p)) return p;
    }
  }
  return undefined;
}

/** The newest kernel in /boot by version (not by file time), preferring one that has an initramfs. */
function scanBoot(root: string): KernelChoice | undefined {
  const boot = resolveInTree(root, '/boot');
  if (!boot || !existsSync(boot)) return undefined;
  const kernels = readdirSync(boot)
    .filter(isCandidateKernelName)
    .filter((n) => isFile(resolveInTree(root, `/boot/${n}`)))
    .map((n) => ({ name: n, version: kernelVersionOf(n) }))
    .sort((a, b) => rpmvercmp(b.version, a.version));
  const withInitrd = kernels.map((k) => ({ ...k, initrd: findInitramfs(root, k.version) }));
  const pick = withInitrd.find((k) => k.initrd) ?? withInitrd[0];
  if (!pick) return undefined;
  return {
    kernel: resolveInTree(root, `/boot/${pick.name}`)!,
    initrds: pick.initrd ? [pick.initrd] : [],
    version: pick.version,
    source: 'scan',
    name: `/boot/${pick.name}`,
  };
}

/** Default-kernel symlinks distributions maintain: Debian's /vmlinuz and /boot/vmlinuz, genpack's /boot/kernel. */
const DEFAULT_LINKS: [string, string][] = [
  ['/vmlinuz', '/initrd.img'],
  ['/boot/vmlinuz', '/boot/initrd.img'],
  ['/boot/kernel', '/boot/initramfs'],
];

function fromDefaultLinks(root: string): KernelChoice | undefined {
  for (const [kernelLink, initrdLink] of DEFAULT_LINKS) {
    const kernel = resolveInTree(root, kernelLink);
    if (!isFile(kernel)) continue;
    const base = posix.basename(kernel);
    const version = KERNEL_PREFIXES.some((p) => base.startsWith(p)) ? kernelVersionOf(base) : undefined;
    const linked = resolveInTree(root, initrdLink);
    const initrd = isFile(linked) ? linked : version ? findInitramfs(root, version) : undefined;
    return { kernel, initrds: initrd ? [initrd] : [], version, source: 'symlink', name: kernelLink };
  }
  return undefined;
}

export interface BlsEntry {
  id: string;
  title?: string;
  version?: string;
  linux?: string;
  initrd: string[];
  options: string[];
  sortKey?: string;
}

/** A Boot Loader Specification type #1 entry: `key value` lines; initrd and options may repeat. */
export function parseBlsEntry(id: string, text: string): BlsEntry {
  const entry: BlsEntry = { id, initrd: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'initrd') entry.initrd.push(...value.split(/\s+/));
    else if (key === 'options') entry.options.push(value);
    else if (key === 'title') entry.title = value;
    else if (key === 'version') entry.version = value;
    else if (key === 'linux') entry.linux = value;
    else if (key === 'sort-key') entry.sortKey = value;
  }
  return entry;
}

/** grubenv's kernelopts, which EL8's entries use as `options $kernelopts`. */
function grubKernelopts(root: string): string | undefined {
  for (const p of ['/boot/grub2/grubenv', '/boot/grub/grubenv']) {
    const f = resolveInTree(root, p);
    if (!isFile(f)) continue;
    const m = /^kernelopts=(.*)$/m.exec(readFileSync(f, 'utf8'));
    if (m) return m[1]!.trim();
  }
  return undefined;
}

/** Entry paths are relative to the boot partition: /boot when it is a directory of the root filesystem. */
function resolveBootPath(root: string, p: string): string | undefined {
  const inBoot = resolveInTree(root, posix.join('/boot', p));
  if (isFile(inBoot)) return inBoot;
  const inRoot = resolveInTree(root, p);
  return isFile(inRoot) ? inRoot : undefined;
}

function fromBls(root: string): KernelChoice | undefined {
  const dir = resolveInTree(root, '/boot/loader/entries');
  if (!dir || !existsSync(dir)) return undefined;
  const entries = readdirSync(dir)
    .filter((f) => f.endsWith('.conf'))
    .map((f) => parseBlsEntry(f.slice(0, -5), readFileSync(join(dir, f), 'utf8')))
    .filter((e) => e.linux && !/rescue/i.test(e.id) && !/rescue/i.test(e.title ?? ''))
    .map((e) => ({
      e,
      kernel: resolveBootPath(root, e.linux!),
      version: e.version ?? kernelVersionOf(posix.basename(e.linux!)),
    }))
    .filter((x) => x.kernel)
    .sort((a, b) => rpmvercmp(b.version, a.version) || (a.e.sortKey ?? '').localeCompare(b.e.sortKey ?? ''));
  const best = entries[0];
  if (!best) return undefined;
  const initrds = best.e.initrd.map((p) => resolveBootPath(root, p));
  if (initrds.some((p) => !p)) return undefined;
  let options = best.e.options.join(' ');
  if (options.includes('$kernelopts'))
    options = options.replace('$kernelopts', grubKernelopts(root) ?? '').trim();
  return {
    kernel: best.kernel!,
    initrds: initrds as string[],
    version: best.version,
    options: options || undefined,
    source: 'bls',
    name: best.e.linux!,
  };
}

/**
 * The kernel to hand over to, in order of authority: a Boot Loader Specification entry (Fedora, EL,
 * systemd), the distribution's default-kernel symlink (Debian and Ubuntu keep it on the newest kernel
 * unless an administrator says otherwise), else the newest kernel in /boot by version.
 */
export function findInstalledKernel(root: string): KernelChoice | undefined {
  return fromBls(root) ?? fromDefaultLinks(root) ?? scanBoot(root);
}

/** Whether /etc/fstab mounts /: then the installed system remounts it read-write itself. */
export function fstabHasRoot(fstab: string): boolean {
  return fstab.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields.length >= 2 && !fields[0]!.startsWith('#') && fields[1] === '/';
  });
}

export interface HandoffRoot {
  uuid?: string;
  device: string;
  fsType: string;
  /** The LUKS container's UUID, when the root filesystem is inside one. */
  luksUuid?: string;
}

const STUB_ONLY = /^(root|rootfstype|initrd|BOOT_IMAGE|rootflags)=|^(ro|rw)$|^vmstub\./;

/**
 * The installed kernel's command line: the stub's own (its console settings and what the user
 * appended) without the stub image's arguments and anything about the stub's root; then either the
 * BLS entry's options, or root=UUID, rootfstype and ro/rw (rw when the installed fstab does not
 * mount / itself).
 */
export function handoffCommandLine(o: {
  stubCmdline: string;
  stubImageArgs: string[];
  root: HandoffRoot;
  fstabHasRoot: boolean;
  blsOptions?: string;
}): string {
  const imageArgs = new Set(o.stubImageArgs);
  const kept = o.stubCmdline.split(/\s+/).filter((t) => t && !STUB_ONLY.test(t) && !imageArgs.has(t));
  const rootSpec = o.root.uuid ? `UUID=${o.root.uuid}` : o.root.device;
  const own: string[] = [];
  if (o.blsOptions) {
    own.push(...o.blsOptions.split(/\s+/).filter(Boolean));
    if (!own.some((t) => t.startsWith('root='))) own.push(`root=${rootSpec}`);
    if (!own.some((t) => t.startsWith('rootfstype='))) own.push(`rootfstype=${o.root.fsType}`);
  } else {
    own.push(`root=${rootSpec}`, `rootfstype=${o.root.fsType}`, o.fstabHasRoot ? 'ro' : 'rw');
  }
  if (o.root.luksUuid && !own.some((t) => t.startsWith('rd.luks.uuid=')))
    own.push(`rd.luks.uuid=${o.root.luksUuid}`);
  // The console settings come last: the last console= is the one /dev/console is.
  return [...own.filter((t) => !t.startsWith('console=')), ...kept].join(' ');
}
