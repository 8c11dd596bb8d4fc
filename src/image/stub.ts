import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { CATALOG } from '../catalog/index.js';
import type { Distro } from '../catalog/types.js';
import { onCleanup } from '../util/cleanup.js';
import { VmstubError } from '../util/errors.js';
import type { Arch } from '../util/arch.js';
import { mirrorSnapshot, mmdebstrap, type AptSource, type MmdebstrapRecipe } from './mmdebstrap.js';
import { appendToSquashfs, checkSystemImage, squash, type SquashOptions } from './squashfs.js';
import { StageCache, stageKey } from './stage-cache.js';

export const STUB_SUITE = 'trixie';
export const DEFAULT_DEBIAN_MIRROR = 'http://deb.debian.org/debian';
export const DEFAULT_DEBIAN_SECURITY_MIRROR = 'http://deb.debian.org/debian-security';

/** The stub's packages: a Debian 13 system that can bootstrap every distribution in the catalog, and no more. */
export const STUB_PACKAGES = [
  // boot and run
  'systemd',
  'systemd-sysv',
  'udev',
  'dbus',
  'systemd-resolved',
  'initramfs-tools',
  'login',
  'iproute2',
  'kmod',
  'util-linux',
  'procps',
  'qemu-guest-agent',
  'busybox-static',
  // hand over to the installed system
  'kexec-tools',
  // bootstrap tools, and the keys that verify what they fetch
  'debootstrap',
  'mmdebstrap',
  'dnf',
  'rpm',
  'gpgv',
  // RPM distributions' signing keys; gpg reads Gentoo's release key to check its fingerprint
  'distribution-gpg-keys',
  'gpg',
  'debian-archive-keyring',
  'ubuntu-keyring',
  // filesystems and disks
  'xfsprogs',
  'btrfs-progs',
  'e2fsprogs',
  'dosfstools',
  'cryptsetup-bin',
  'fdisk',
  // fetching and unpacking
  'curl',
  'ca-certificates',
  'xz-utils',
  'zstd',
  'openssh-client',
  // the installer itself
  'nodejs',
];

const KERNEL_PACKAGE: Record<Arch, string> = {
  x86_64: 'linux-image-cloud-amd64',
  aarch64: 'linux-image-cloud-arm64',
  riscv64: 'linux-image-riscv64',
};

/** Documentation, manuals and translations have no reader in a disposable stub. */
export const STUB_DPKG_OPTIONS = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/lintian/*',
];

/** Measured on the stub (docs/benchmarks.md): level 19 with 1 MiB blocks is 135 MiB; level 15 with 256 KiB, 143 MiB. */
export const STUB_SQUASH: SquashOptions = { compression: 'zstd', level: 19, blockSize: '1M' };

export interface StubMirrors {
  mirror: string;
  securityMirror: string;
}

export function stubRecipe(arch: Arch, m: StubMirrors, guestDir: string): MmdebstrapRecipe {
  const sources: AptSource[] = [
    { uri: m.mirror, suite: STUB_SUITE, components: ['main'] },
    { uri: m.mirror, suite: `${STUB_SUITE}-updates`, components: ['main'] },
    { uri: m.securityMirror, suite: `${STUB_SUITE}-security`, components: ['main'] },
  ];
  return {
    suite: STUB_SUITE,
    arch,
    sources,
    variant: 'essential',
    packages: [...STUB_PACKAGES, KERNEL_PACKAGE[arch]],
    keyring: '/usr/share/keyrings/debian-archive-keyring.gpg',
    dpkgOptions: STUB_DPKG_OPTIONS,
    customizeHooks: [`sync-in ${join(guestDir, 'rootfs')} /`, `${join(guestDir, 'customize.sh')} "$1"`],
  };
}

/** /root/ID.sh: the manual path (`./debian12.sh` at the stub's console), one per catalog entry. */
export function installScript(d: Distro): string {
  const lines = [
    '#!/bin/sh',
    `# Installs ${d.name} onto this VM's data disk (or its share). Generated from vmstub's catalog.`,
  ];
  // A mount namespace of its own: the target's mounts must not leak into services' namespaces.
  if (d.installable) lines.push(`exec unshare --mount --propagation private vmstub install ${d.id} "$@"`);
  else {
    lines.push(
      `echo "${d.name} is in vmstub's catalog but not installable by this version of vmstub yet." >&2`,
      'exit 1',
    );
  }
  return lines.join('\n') + '\n';
}

export function stubBanner(catalog: Distro[]): string {
  const installable = catalog.filter((d) => d.installable).map((d) => `./${d.id}.sh`);
  return [
    '',
    'This is the vmstub stub: a disposable Debian 13 system that installs a distribution onto this',
    "VM's data disk (/dev/disk/by-id/virtio-data) and, on later boots, hands over to it with kexec.",
    'Nothing here is kept: it runs from a read-only image with its changes in memory.',
    '',
    `To install by hand: ${installable.join(' ')}`,
    '(vmstub create on the host does the same unattended.)',
    '',
  ].join('\n');
}

/**
 * vmstub's own part of the stub, appended to the squashed root filesystem as /vmstub (the root
 * filesystem links /root, /etc/motd and /usr/local/bin/vmstub into it): the bundle, one install script
 * per catalog entry, the banner. Written under dir/vmstub.
 */
export function writeStubOverlay(dir: string, bundle: string, catalog: Distro[]): void {
  const top = join(dir, 'vmstub');
  mkdirSync(join(top, 'root'), { recursive: true, mode: 0o755 });
  copyFileSync(bundle, join(top, 'vmstub.cjs'));
  writeFileSync(join(top, 'motd'), stubBanner(catalog));
  for (const d of catalog) writeFileSync(join(top, 'root', `${d.id}.sh`), installScript(d), { mode: 0o755 });
}

/** A digest of a directory's files: names, modes and contents. */
export function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      hash.update(`${relative(dir, p)}\0${st.mode}\0`);
      if (st.isDirectory()) walk(p);
      else hash.update(readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The running bundle (dist/vmstub.cjs) and the guest files shipped next to it. */
export function installationPaths(script = process.argv[1] ?? ''): { bundle: string; guest: string } {
  const bundle = script.endsWith('.cjs')
    ? resolve(script)
    : resolve(dirname(script), '..', '..', 'vmstub.cjs');
  if (!existsSync(bundle)) throw new VmstubError(`the vmstub bundle ${bundle} is missing; run npm run build`);
  const guest = resolve(dirname(bundle), '..', 'guest', 'stub');
  if (!existsSync(join(guest, 'customize.sh')))
    throw new VmstubError(`vmstub's guest files are missing (${guest})`);
  return { bundle, guest };
}

export interface StubBuildOptions {
  arch: Arch;
  outDir: string;
  mirrors: StubMirrors;
  progress: (line: string) => void;
}

export interface StubBuildResult {
  image: string;
  sha256: string;
  bytes: number;
  stages: { name: string; hit: boolean; key: string }[];
}

/**
 * Builds stub-ARCH.squashfs in two cached stages: the root filesystem (mmdebstrap with the stub's
 * packages and guest files; keyed by suite, architecture, packages, mirrors, what the mirrors serve and
 * the guest files), then the image (the root filesystem squashed with this vmstub's bundle, the install
 * scripts and the banner; keyed by the root filesystem and those files).
 */
export async function buildStub(
  o: StubBuildOptions,
  cache = new StageCache(undefined, o.progress),
): Promise<StubBuildResult> {
  const { bundle, guest } = installationPaths();
  const recipe = stubRecipe(o.arch, o.mirrors, guest);
  const stages: StubBuildResult['stages'] = [];
  let imageDir: string;

  const snapshot = await mirrorSnapshot(recipe.sources);
  const rootfsStage = `stub-rootfs-${o.arch}`;
  let rootfsDir: string;
  let rootfsKey: string;
  if (!snapshot) {
    const newest = cache.newest(rootfsStage);
    if (!newest)
      throw new VmstubError(`cannot reach ${o.mirrors.mirror} and no stub root filesystem is cached`);
    o.progress(`mirror unreachable: using the cached root filesystem ${basename(newest)}`);
    rootfsDir = newest;
    rootfsKey = basename(newest).slice(rootfsStage.length + 1);
    stages.push({ name: 'rootfs', hit: true, key: rootfsKey });
  } else {
    rootfsKey = stageKey({
      suite: recipe.suite,
      arch: o.arch,
      packages: [...recipe.packages].sort(),
      sources: recipe.sources,
      variant: recipe.variant,
      dpkg: recipe.dpkgOptions,
      snapshot,
      guest: treeDigest(guest),
    });
    const started = Date.now();
    const r = await cache.build(rootfsStage, rootfsKey, async (dir) => {
      o.progress(`rootfs: miss (${rootfsKey}); bootstrapping Debian ${STUB_SUITE} with mmdebstrap`);
      const log = join(cache.root, `${rootfsStage}.log`);
      await mmdebstrap(recipe, join(dir, 'root'), log, (line) => o.progress(`rootfs: ${line}`));
    });
    o.progress(
      `rootfs: ${r.hit ? 'hit' : `built in ${((Date.now() - started) / 1000).toFixed(0)} s`} (${rootfsKey})`,
    );
    rootfsDir = r.dir;
    stages.push({ name: 'rootfs', hit: r.hit, key: rootfsKey });
  }

  let started = Date.now();
  const baseKey = stageKey({ rootfsKey, squash: STUB_SQUASH, epoch: process.env.SOURCE_DATE_EPOCH ?? null });
  const base = await cache.build(`stub-base-${o.arch}`, baseKey, async (dir) => {
    o.progress(`base: miss (${baseKey}); squashing the root filesystem`);
    await squash(join(rootfsDir, 'root'), join(dir, 'base.squashfs'), STUB_SQUASH);
  });
  o.progress(
    `base: ${base.hit ? 'hit' : `squashed in ${((Date.now() - started) / 1000).toFixed(0)} s`} (${baseKey})`,
  );
  stages.push({ name: 'base', hit: base.hit, key: baseKey });

  const overlay = mkdtempSync(join(tmpdir(), 'vmstub-overlay-'));
  const overlayCleanup = onCleanup(`temporary directory ${overlay}`, () =>
    rmSync(overlay, { recursive: true, force: true }),
  );
  try {
    writeStubOverlay(overlay, bundle, CATALOG);
    const imageKey = stageKey({ baseKey, overlay: treeDigest(overlay) });
    started = Date.now();
    const image = await cache.build(`stub-image-${o.arch}`, imageKey, async (dir) => {
      o.progress(`image: miss (${imageKey}); appending vmstub to the base`);
      const out = join(dir, `stub-${o.arch}.squashfs`);
      copyFileSync(join(base.dir, 'base.squashfs'), out);
      await appendToSquashfs(overlay, out);
      await checkSystemImage(out, o.arch);
    });
    o.progress(
      `image: ${image.hit ? 'hit' : `done in ${((Date.now() - started) / 1000).toFixed(1)} s`} (${imageKey})`,
    );
    stages.push({ name: 'image', hit: image.hit, key: imageKey });
    imageDir = image.dir;
  } finally {
    await overlayCleanup.undo();
  }

  mkdirSync(o.outDir, { recursive: true });
  const target = join(o.outDir, `stub-${o.arch}.squashfs`);
  const tmp = `${target}.tmp-${process.pid}`;
  const partial = onCleanup(`unfinished ${tmp}`, () => rmSync(tmp, { force: true }));
  copyFileSync(join(imageDir, `stub-${o.arch}.squashfs`), tmp);
  renameSync(tmp, target);
  partial.release();
  return { image: target, sha256: await fileSha256(target), bytes: statSync(target).size, stages };
}
