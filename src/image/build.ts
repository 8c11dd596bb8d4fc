/**
 * `vmstub image build FILE.yaml`: an image from a config and one hook, in stages with one job each,
 * each cached under a key made from its inputs (osbuild's chain: a stage's key includes the key of the
 * stage it starts from), so that a change rebuilds from the first stage it touches:
 *
 *   bootstrap  mmdebstrap: the release, its kernel and what the formats need to boot
 *   packages   the config's packages, with or without Recommends
 *   root       the hook, accounts, host name, network, the final mirror, boot files; squashed
 *   iso        GRUB for BIOS and UEFI, the ESP, the hybrid ISO
 *
 * Outputs are checked before they are called done and copied into the output directory whole or not
 * at all.
 */
import {
  chmodSync,
  constants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { findInstalledKernel } from '../boot/discover.js';
import type { ImageConfig, ImageFormat } from './config.js';
import { CHROOT_ENV, openChroot } from './chroot.js';
import { requireForeignArch } from './foreign-arch.js';
import { buildIso, checkIsoFits, grubModuleDir, isoPlatform, liveDracutConfig, volumeLabel } from './iso.js';
import { mirrorSnapshot, mmdebstrap, type AptSource, type MmdebstrapRecipe } from './mmdebstrap.js';
import { checkSystemImage, squash } from './squashfs.js';
import { StageCache, stageKey, type StageInputs } from './stage-cache.js';
import { installationPaths, treeDigest } from './installation.js';
import { fileSha256, sha256Of } from '../util/digest.js';
import { applyToRoot } from '../installer/execute.js';
import { parseDpkgStatus } from '../installer/root-cache.js';
import { chroot, type RootAction } from '../installer/plan/types.js';
import {
  accountActions,
  hostnameAction,
  hostsAction,
  machineIdReset,
  MACHINE_IDENTITY_FILES,
} from '../installer/plan/common.js';
import { debNetworkActions } from '../installer/plan/deb.js';
import { debSources } from '../installer/render.js';
import { runPlanInStubRoot, stubBusybox } from '../installer/stub-root.js';
import type { DebDistro } from '../catalog/types.js';
import { stubImagePath } from './locations.js';
import {
  isPlannedImage,
  plannedBootstrapInputs,
  plannedBootstrapPackages,
  plannedBootstrapPlan,
  plannedFamily,
  plannedMirrorSnapshot,
} from './planned-family.js';
import { onCleanup } from '../util/cleanup.js';
import { VmstubError } from '../util/errors.js';
import { run, runLines, runSync, which } from '../util/exec.js';
import { formatSize } from '../util/size.js';
import { hostArch } from '../vm/accel.js';

/** Bumped when a stage's own code changes what it makes: its cached entries then miss. */
export const STAGE_VERSIONS = { bootstrap: 3, packages: 1, root: 4, iso: 1 } as const;
export type StageName = keyof typeof STAGE_VERSIONS;

/** Below this a squashfs is junk that mksquashfs left (vmdebootstrap's rule). */
export const MIN_SQUASHFS_BYTES = 1024 * 1024;

/** What every image gets: a booting systemd system with DHCP, and the tools its boot files are made with. */
export const IMAGE_BASE_PACKAGES = [
  'systemd-sysv',
  'udev',
  'dbus',
  'systemd-resolved',
  'login',
  'passwd',
  'apt',
  'iproute2',
  'ca-certificates',
  // vmstub's system initramfs (boot/initramfs, for vmstub run) is made of the image's busybox and modules
  'busybox-static',
  'kmod',
];

/** An image without documentation: dpkg's path rules (they stay in the image, so later installs follow them too). */
export const NO_DOCS_DPKG_OPTIONS = [
  'path-exclude=/usr/share/man/*',
  'path-exclude=/usr/share/doc/*',
  'path-include=/usr/share/doc/*/copyright',
  'path-exclude=/usr/share/locale/*',
  'path-include=/usr/share/locale/locale.alias',
  'path-exclude=/usr/share/info/*',
  'path-exclude=/usr/share/lintian/*',
];

/**
 * While the packages are installed, the initramfs makers (update-initramfs, and dracut where the ISO
 * brings it) are diverted to no-ops: the kernel package and every trigger after it would each make an
 * initramfs, and for an image of another architecture each run costs minutes of emulated CPU (dracut's
 * generic one, 39 MB, was most of a cold bootstrap). The root stage gives them back and makes the
 * release's initramfs once, before the hook, so that the hook sees a whole system and a kernel update
 * in the running image makes its initramfs as usual; the ISO's live initramfs is made after the hook.
 */
const UPDATE_INITRAMFS = '/usr/sbin/update-initramfs';
const INITRAMFS_MAKERS = [UPDATE_INITRAMFS, '/usr/bin/dracut'];
const held = (path: string) => `${path}.vmstub-build`;
const HOLD_INITRAMFS_HOOK = INITRAMFS_MAKERS.map(
  (path) =>
    `chroot "$1" dpkg-divert --quiet --local --rename --divert ${held(path)} --add ${path} && ln -s /bin/true "$1${path}"`,
).join(' && ');
async function releaseInitramfs(root: string, log: (l: string) => void, logFile: string): Promise<void> {
  for (const path of INITRAMFS_MAKERS) {
    rmSync(join(root, path.slice(1)), { force: true });
    await inRoot(root, ['dpkg-divert', '--quiet', '--local', '--rename', '--remove', path], log, logFile);
  }
  const { version } = installedKernel(root);
  if (
    existsSync(join(root, UPDATE_INITRAMFS.slice(1))) &&
    !existsSync(join(root, 'boot', `initrd.img-${version}`))
  )
    await inRoot(root, ['update-initramfs', '-c', '-k', version], log, logFile, "the release's initramfs");
}

/** dracut's live module: what the ISO's initramfs finds and mounts the squashfs with; zstd compresses it. */
export const LIVE_PACKAGES = ['dracut', 'dracut-live', 'dracut-config-generic', 'zstd'];

type DebImageConfig = ImageConfig & { distro: DebDistro };
const isDebImage = (c: ImageConfig): c is DebImageConfig => c.distro.family === 'deb';

export function bootstrapPackages(c: ImageConfig): string[] {
  if (isPlannedImage(c)) return plannedBootstrapPackages(c);
  if (!isDebImage(c)) throw new Error('an image of an unknown family');
  const extra = [c.kernel, c.distro.vendor === 'ubuntu' ? 'ubuntu-keyring' : 'debian-archive-keyring'];
  if (c.users.some((u) => u.sudo)) extra.push('sudo');
  if (c.formats.includes('iso')) extra.push(...LIVE_PACKAGES);
  return [...new Set([...IMAGE_BASE_PACKAGES, ...extra])].sort();
}

export function buildSources(c: ImageConfig): AptSource[] {
  if (!isDebImage(c)) throw new Error('apt sources are for a Debian-family image');
  const d = c.distro;
  return [
    { uri: c.mirror, suite: d.suite, components: d.components },
    { uri: c.mirror, suite: d.updatesSuite, components: d.components },
    { uri: c.securityMirror, suite: d.securitySuite, components: d.components },
  ];
}

export interface StageReport {
  name: StageName;
  hit: boolean;
  key: string;
  /** On a miss: what differs from the newest cached entry of the stage (empty when there is none). */
  changed: string[];
  skipped?: boolean;
  seconds?: number;
}

export interface ImageOutput {
  format: ImageFormat;
  path: string;
  bytes: number;
  sha256: string;
}

export interface ImageBuildResult {
  name: string;
  outputs: ImageOutput[];
  files: string[];
  stages: StageReport[];
  log: string;
}

export interface ImageBuildOptions {
  outDir: string;
  progress: (line: string) => void;
  /** Rebuild every stage (the results are cached again). */
  noCache?: boolean;
  /** Prune the cache to this many bytes afterwards. */
  cacheMaxBytes?: number;
}

/** One stage of the chain: its inputs (the key is made from them) and the work that fills its cache entry. */
interface Stage {
  name: StageName;
  cacheName: string;
  inputs: StageInputs;
  key: string;
  skip?: boolean;
}

const bootstrapCacheName = (c: ImageConfig) => `image-bootstrap-${c.distro.id}-${c.arch}`;

/**
 * Every stage's inputs and key, computed before anything is built (so `--explain` can say what would
 * happen). `snapshot` is what the mirror serves now: a newer archive is a new bootstrap.
 */
export function planStages(c: ImageConfig, snapshot: Record<string, string>, epoch: string | null): Stage[] {
  const stages: Stage[] = [];
  const add = (name: StageName, cacheName: string, inputs: StageInputs, skip = false) => {
    const full = { stage: name, version: STAGE_VERSIONS[name], ...inputs };
    const key = stageKey(full);
    stages.push({ name, cacheName, inputs: full, key, skip });
    return key;
  };
  const installed = bootstrapPackages(c);
  const bootstrap = add(
    'bootstrap',
    bootstrapCacheName(c),
    isPlannedImage(c)
      ? {
          distro: c.distro.id,
          arch: c.arch,
          snapshot,
          packages: installed,
          ...plannedBootstrapInputs(c, installed),
          stub: stubIdentity(c.arch),
        }
      : {
          distro: c.distro.id,
          suite: (c as DebImageConfig).distro.suite,
          arch: c.arch,
          sources: buildSources(c),
          snapshot,
          packages: installed,
          dpkg: c.docs ? [] : NO_DOCS_DPKG_OPTIONS,
          keyring: c.keyring ? sha256Of(readFileSync(c.keyring)) : undefined,
        },
  );
  const packages = add(
    'packages',
    `image-packages-${c.name}-${c.arch}`,
    { from: bootstrap, packages: [...c.packages].sort(), recommends: c.recommends },
    c.packages.length === 0,
  );
  const root = add('root', `image-root-${c.name}-${c.arch}`, {
    from: c.packages.length ? packages : bootstrap,
    files: c.files ? treeDigest(c.files) : null,
    hook: c.hook ? sha256Of(readFileSync(c.hook)) : null,
    hostname: c.hostname,
    users: c.users,
    root: c.root,
    finalMirror: c.finalMirror,
    finalSecurityMirror: c.finalSecurityMirror,
    // The live initramfs's configuration; a root without an ISO has none (and keeps its key).
    live: c.formats.includes('iso') ? liveDracutConfig(isoPlatform(c.arch)) : false,
    cmdline: c.cmdline,
    compression: c.compression,
    compressionLevel: c.compressionLevel ?? null,
    epoch,
    initramfs: systemInitramfsDigest(),
  });
  const iso = c.formats.includes('iso');
  add(
    'iso',
    `image-iso-${c.name}-${c.arch}`,
    {
      from: root,
      label: volumeLabel(c.name),
      cmdline: c.cmdline,
      // Only an image with an ISO has an ISO platform (riscv64 has none) and its tools to record.
      tools: iso ? toolVersions(['xorriso', 'grub-common', ...isoHostPackages(c)]) : [],
    },
    !iso,
  );
  return stages;
}

/** What in the stub an RPM or Gentoo image's bootstrap runs with: its versions key the stage. */
const STUB_TOOLS = [
  'rpm',
  'dnf',
  'gpg',
  'gpgv',
  'distribution-gpg-keys',
  'nodejs',
  'tar',
  'xz-utils',
  'zstd',
];

/**
 * The versions of the stub's tools (from its dpkg database), not the stub's own bytes: the stub is
 * built again whenever vmstub changes, and its tools seldom do. Null when there is no stub yet.
 */
function stubIdentity(arch: ImageConfig['arch']): Record<string, string> | null {
  const stub = stubImagePath(arch);
  if (!existsSync(stub)) return null;
  const r = runSync(which('unsquashfs') ?? 'unsquashfs', ['-cat', stub, 'var/lib/dpkg/status']);
  if (r.code !== 0) throw new VmstubError(`cannot read the packages of ${stub}: ${r.stderr.trim()}`);
  const installed = parseDpkgStatus(r.stdout);
  return Object.fromEntries(STUB_TOOLS.map((p) => [p, installed[p] ?? 'absent']));
}

/** vmstub's system initramfs is made by its guest files: a change to them is a change to the root stage. */
function systemInitramfsDigest(): string {
  const { guest } = installationPaths();
  return sha256Of(
    Buffer.concat([
      readFileSync(join(guest, 'make-initramfs.sh')),
      readFileSync(join(guest, 'initramfs/init')),
    ]),
  );
}

/** The Debian package versions of the host tools a stage's output depends on. */
function toolVersions(packages: string[]): Record<string, string> {
  let status = '';
  try {
    status = readFileSync('/var/lib/dpkg/status', 'utf8');
  } catch {
    // not a dpkg system: every tool reads as absent
  }
  const blocks = status.split('\n\n');
  return Object.fromEntries(
    packages.map((p) => {
      const block = blocks.find((b) => b.startsWith(`Package: ${p}\n`));
      return [p, /^Version: (.*)$/m.exec(block ?? '')?.[1] ?? 'absent'];
    }),
  );
}

/** Each stage's status against the cache, without building anything. */
export function explainStages(stages: Stage[], cache: StageCache): StageReport[] {
  return stages.map((s) => {
    if (s.skip) return { name: s.name, hit: true, key: s.key, changed: [], skipped: true };
    const e = cache.explain(s.cacheName, s.key, s.inputs);
    // The stage it starts from is named by its key; say which stage that is.
    const from = stages.find((p) => p.key === s.inputs.from)?.name;
    const changed = e.changed.map((c) => (c.startsWith('from: ') && from ? `the ${from} stage changed` : c));
    return { name: s.name, hit: e.hit, key: s.key, changed };
  });
}

export function describeStage(r: Omit<StageReport, 'name'> & { name: string }): string {
  if (r.skipped) return `${r.name}: not needed`;
  if (r.hit) return `${r.name}: hit (${r.key})`;
  const why = r.changed.length ? r.changed.join('; ') : 'nothing cached yet';
  return `${r.name}: miss (${r.key}): ${why}`;
}

/** Runs a command, every line into the build log; fails naming what failed and the log. */
async function logged(
  what: string,
  cmd: string,
  args: string[],
  log: (line: string) => void,
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd?: string,
): Promise<void> {
  log(`$ ${[cmd, ...args].join(' ')}`);
  const r = await runLines(which(cmd) ?? cmd, args, log, { env, cwd, killWithParent: true });
  if (r.code !== 0) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.code}`;
    throw new VmstubError(`${what} ${how}${r.last ? `: ${r.last}` : ''} (log: ${logFile})`);
  }
}

const copyTree = (from: string, to: string) =>
  run(which('cp') ?? 'cp', ['-a', '--reflink=auto', from, to]).then((r) => {
    if (r.code !== 0) throw new VmstubError(`cannot copy ${from}: ${r.stderr.trim()}`);
  });

/** The image's kernel, found as the boot handoff finds an installed system's, and its version. */
function installedKernel(root: string): { version: string; vmlinuz: string } {
  const found = findInstalledKernel(root);
  if (!found?.version)
    throw new VmstubError('the image has no kernel in /boot (is the kernel package right?)');
  return { version: found.version, vmlinuz: found.kernel };
}

const inRoot = (root: string, cmd: string[], log: (l: string) => void, logFile: string, what?: string) =>
  logged(what ?? cmd.join(' '), 'chroot', [root, ...cmd], log, logFile, { ...process.env, ...CHROOT_ENV });

const aptInRoot = (root: string, args: string[], log: (l: string) => void, logFile: string) =>
  inRoot(root, ['apt-get', '-y', ...args], log, logFile, `apt-get ${args[0]}`);

/** The package manager's downloads dropped (apt-get clean, dnf clean all; emerge keeps none). */
async function cleanPackages(root: string, c: ImageConfig, log: (l: string) => void, logFile: string) {
  if (!isPlannedImage(c)) return aptInRoot(root, ['clean'], log, logFile);
  const argv = plannedFamily(c).cleanArgv(c);
  if (argv) await inRoot(root, argv, log, logFile);
}

/**
 * Drops what the build left that is not the image's: apt's lists and downloads, package managers' logs,
 * caches that record the build, /run's contents (a tmpfs at boot). mmdebstrap drops the same.
 */
function dropBuildState(root: string): void {
  for (const dir of ['var/lib/apt/lists', 'var/cache/apt/archives', 'run']) {
    const path = join(root, dir);
    if (!existsSync(path)) continue;
    for (const e of readdirSync(path))
      if (e !== 'partial' && e !== 'lock') rmSync(join(path, e), { recursive: true, force: true });
  }
  for (const f of [
    'var/cache/apt/pkgcache.bin',
    'var/cache/apt/srcpkgcache.bin',
    'var/cache/ldconfig/aux-cache',
    'var/cache/debconf/tmp.ci',
    'var/log/apt/eipp.log.xz',
    'var/log/apt/history.log',
    'var/log/apt/term.log',
    'var/log/dpkg.log',
    'var/log/alternatives.log',
    // dnf's and yum's
    'var/cache/dnf',
    'var/cache/yum',
    'var/cache/libdnf5',
    'var/log/dnf.log',
    'var/log/dnf.librepo.log',
    'var/log/dnf.rpm.log',
    'var/log/dnf5.log',
    'var/log/hawkey.log',
  ])
    rmSync(join(root, f), { recursive: true, force: true });
}

function write(root: string, path: string, content: string, mode = 0o644): void {
  const full = join(root, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(full, content, { mode });
  chmodSync(full, mode);
}

const FIRST_BOOT_HOST_KEYS = `[Unit]
Description=SSH host keys of this system's own (vmstub image)
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`;

/**
 * What the root stage writes after the hook: the accounts, host name, network and identity files, by
 * the same actions an installed system of the same users and name gets (installer/plan), then what is
 * an image's own: apt's final sources, and SSH host keys made at each system's first boot.
 */
export function imageRootActions(c: ImageConfig, hasSshd: boolean): RootAction[] {
  return [
    ...accountActions(c, isPlannedImage(c) ? plannedFamily(c).sudoGroup : 'sudo'),
    hostnameAction(c),
    hostsAction(c),
    ...(isPlannedImage(c) ? plannedFamily(c).rootActions(c) : debRootActions(c)),
    ...(hasSshd
      ? ([
          {
            kind: 'write',
            path: '/etc/systemd/system/vmstub-ssh-host-keys.service',
            content: FIRST_BOOT_HOST_KEYS,
          },
          chroot(['systemctl', 'enable', 'vmstub-ssh-host-keys.service']),
        ] satisfies RootAction[])
      : []),
    machineIdReset,
    ...MACHINE_IDENTITY_FILES.map((path): RootAction => ({ kind: 'remove', path })),
  ];
}

/** A Debian or Ubuntu image's network and apt sources. */
function debRootActions(c: ImageConfig): RootAction[] {
  if (!isDebImage(c)) throw new Error('not a Debian-family image');
  return [
    // Images carry no netplan: systemd-networkd directly, on Ubuntu too.
    ...debNetworkActions('networkd'),
    {
      kind: 'write',
      path: `/etc/apt/sources.list.d/${c.distro.vendor}.sources`,
      content: debSources(
        c.distro,
        { mirror: c.finalMirror, securityMirror: c.finalSecurityMirror },
        c.distro.keyring,
      ),
    },
    // The build's one-line sources go.
    { kind: 'write', path: '/etc/apt/sources.list', content: '# vmstub: see sources.list.d/\n' },
  ];
}

/** The host's GRUB packages an ISO of this image is made with (none where GRUB comes from the image's release). */
function isoHostPackages(c: ImageConfig): string[] {
  const p = isoPlatform(c.arch);
  return p.grubFrom === 'host' ? [...(p.bios ? [p.bios.package] : []), p.efi.package] : [];
}

/**
 * GRUB's modules for a foreign ISO, from the image's own release: the package downloaded by the
 * image's apt and unpacked beside the root (into out), not installed in it.
 */
async function imageGrub(root: string, out: string, pkg: string, log: (l: string) => void, logFile: string) {
  const dl = join(root, 'tmp/vmstub-grub');
  mkdirSync(dl, { recursive: true });
  await inRoot(
    root,
    ['sh', '-c', `cd /tmp/vmstub-grub && apt-get download ${pkg}`],
    log,
    logFile,
    `downloading ${pkg}`,
  );
  const deb = readdirSync(dl).find((f) => f.endsWith('.deb'));
  if (!deb) throw new VmstubError(`${pkg}: apt-get download left no package`);
  await logged(`unpacking ${pkg}`, 'dpkg-deb', ['-x', join(dl, deb), out], log, logFile);
  rmSync(dl, { recursive: true, force: true });
}

/**
 * The files that boot the image: boot/kernel, boot/initramfs (vmstub's small initramfs that mounts the
 * squashfs vmstub run attaches) and boot/cmdline, for `vmstub run`; with the ISO, the live initramfs
 * dracut makes. Returns the kernel and the initramfs that go beside the squashfs.
 */
async function bootFiles(
  root: string,
  outDir: string,
  c: ImageConfig,
  log: (l: string) => void,
  logFile: string,
) {
  const { version, vmlinuz } = installedKernel(root);
  const { guest } = installationPaths();
  const systemInitrd = `initramfs-vmstub-${version}.img`;
  // A release without busybox (the RPM family) gets the stub's, which is static.
  const busybox = existsSync(join(root, 'usr/bin/busybox'))
    ? []
    : [await stubBusybox(stubImagePath(c.arch), outDir)];
  await logged(
    'making the system initramfs',
    join(guest, 'make-initramfs.sh'),
    [root, join(root, 'boot', systemInitrd), ...busybox],
    log,
    logFile,
  );
  for (const b of busybox) rmSync(b, { force: true });
  for (const [link, target] of [
    ['kernel', basename(vmlinuz)],
    ['initramfs', systemInitrd],
  ] as const) {
    rmSync(join(root, 'boot', link), { force: true });
    symlinkSync(target, join(root, 'boot', link));
  }
  write(root, 'boot/cmdline', c.cmdline ? `${c.cmdline}\n` : '');
  // The release's own initramfs: Debian's name, or the one kernel-install or installkernel had dracut make.
  let initrd =
    [`initrd.img-${version}`, `initramfs-${version}.img`]
      .map((f) => join(root, 'boot', f))
      .find((p) => existsSync(p)) ?? join(root, 'boot', `initrd.img-${version}`);
  if (c.formats.includes('iso')) {
    write(root, 'etc/dracut.conf.d/10-vmstub-live.conf', liveDracutConfig(isoPlatform(c.arch)));
    await inRoot(
      root,
      ['dracut', '--force', '--kver', version, `/boot/initrd.img-${version}`],
      log,
      logFile,
      'dracut (the live initramfs)',
    );
    // The ISO carries it beside the squashfs; the running live system has no use for a second copy.
    initrd = join(outDir, `${c.name}.initrd`);
    renameSync(join(root, 'boot', `initrd.img-${version}`), initrd);
  }
  if (!existsSync(initrd)) initrd = join(root, 'boot', systemInitrd);
  return { version, vmlinuz, initrd };
}

/** Copies a finished file into the output directory whole, or leaves nothing there. */
export function deliver(from: string, to: string): void {
  const tmp = `${to}.tmp-${process.pid}`;
  const partial = onCleanup(`unfinished ${tmp}`, () => rmSync(tmp, { force: true }));
  try {
    copyFileSync(from, tmp, constants.COPYFILE_FICLONE);
    if (statSync(tmp).size !== statSync(from).size) throw new VmstubError(`${to}: the copy is short`);
    renameSync(tmp, to);
  } catch (e) {
    rmSync(tmp, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC')
      throw new VmstubError(
        `no space left in ${dirname(to)} for ${to.split('/').pop()} (${formatSize(statSync(from).size)})`,
      );
    throw e instanceof VmstubError
      ? e
      : new VmstubError(`cannot write ${to}: ${code ?? (e as Error).message}`);
  } finally {
    partial.release();
  }
}

/** What the mirror serves now; offline, what the newest cached bootstrap of this image was made from. */
export async function currentSnapshot(
  c: ImageConfig,
  cache: StageCache,
  progress: (line: string) => void,
): Promise<Record<string, string>> {
  const snapshot = isPlannedImage(c) ? await plannedMirrorSnapshot(c) : await mirrorSnapshot(buildSources(c));
  if (snapshot) return snapshot;
  const newest = cache.newest(bootstrapCacheName(c));
  const cached = newest ? cache.inputsOf(newest)?.snapshot : undefined;
  if (!cached || typeof cached !== 'object')
    throw new VmstubError(
      `cannot reach ${c.mirror} (${isPlannedImage(c) ? 'its index files' : 'its InRelease files'}) to build ${c.name}, and no bootstrap of it is cached`,
    );
  progress(`cannot reach ${c.mirror}: using the mirror state of the cached bootstrap ${basename(newest!)}`);
  return cached as Record<string, string>;
}

export interface BuiltStages {
  stages: StageReport[];
  /** Each built stage's cache entry. */
  dirs: Partial<Record<StageName, string>>;
  log: string;
}

/** Builds every stage of an image, or finds it cached; the results stay in the cache. */
export async function buildStages(
  c: ImageConfig,
  o: ImageBuildOptions,
  cache: StageCache,
): Promise<BuiltStages> {
  requireForeignArch(c.arch, hostArch());
  const logFile = join(cache.root, 'logs', `${c.name}-${c.arch}.log`);
  mkdirSync(dirname(logFile), { recursive: true });
  writeFileSync(logFile, '');
  const log = (line: string) => writeFileSync(logFile, line + '\n', { flag: 'a' });
  const snapshot = await currentSnapshot(c, cache, o.progress);
  const epoch = process.env.SOURCE_DATE_EPOCH ?? null;
  const stages = planStages(c, snapshot, epoch);
  const reports = explainStages(stages, cache);
  const byName = (n: StageName) => stages.find((s) => s.name === n)!;
  const dirs: Partial<Record<StageName, string>> = {};

  const runStage = async (name: StageName, fill: (dir: string) => Promise<void>) => {
    const s = byName(name);
    const report = reports.find((r) => r.name === name)!;
    if (s.skip) {
      o.progress(describeStage(report));
      return;
    }
    if (!report.hit || o.noCache) o.progress(describeStage({ ...report, hit: false }));
    const started = Date.now();
    const r = await cache.build(s.cacheName, s.key, fill, 2, { inputs: s.inputs, rebuild: o.noCache });
    report.hit = r.hit;
    if (r.hit) o.progress(describeStage(report));
    else {
      report.seconds = Math.round((Date.now() - started) / 100) / 10;
      o.progress(`${name}: built in ${report.seconds} s`);
    }
    dirs[name] = r.dir;
  };

  await runStage('bootstrap', async (dir) => {
    if (isPlannedImage(c)) {
      const root = join(dir, 'root');
      mkdirSync(root);
      o.progress(`bootstrap: ${c.distro.name} by the installer's own steps, with the stub's tools`);
      await runPlanInStubRoot(plannedBootstrapPlan(c, bootstrapPackages(c)), {
        stub: stubImagePath(c.arch),
        target: root,
        logFile,
        files: c.keyring ? [c.keyring] : [],
        emit: (e) => {
          if (e.type === 'log') log(`${e.step}: ${e.line}`);
          else if (e.type === 'step-start') o.progress(`bootstrap: ${e.title}`);
        },
      });
      dropBuildState(root);
      return;
    }
    if (!isDebImage(c)) throw new Error('not a Debian-family image');
    const recipe: MmdebstrapRecipe = {
      suite: c.distro.suite,
      arch: c.arch,
      sources: buildSources(c),
      variant: 'minbase',
      packages: bootstrapPackages(c),
      keyring: c.keyring ?? c.distro.keyring,
      dpkgOptions: c.docs ? [] : NO_DOCS_DPKG_OPTIONS,
      essentialHooks: [HOLD_INITRAMFS_HOOK],
      customizeHooks: [],
    };
    await mmdebstrap(recipe, join(dir, 'root'), logFile, (l) => o.progress(`bootstrap: ${l}`));
  });

  await runStage('packages', async (dir) => {
    await copyTree(join(dirs.bootstrap!, 'root'), join(dir, 'root'));
    const root = join(dir, 'root');
    const session = await openChroot(root, { network: true });
    try {
      o.progress(`packages: installing ${c.packages.join(' ')}`);
      if (isPlannedImage(c)) {
        const argv = plannedFamily(c).installArgv(c);
        await inRoot(root, argv, log, logFile, `${argv[0]} install`);
      } else {
        await aptInRoot(root, ['update'], log, logFile);
        await aptInRoot(
          root,
          ['install', c.recommends ? '--install-recommends' : '--no-install-recommends', ...c.packages],
          log,
          logFile,
        );
      }
      await cleanPackages(root, c, log, logFile);
      dropBuildState(root);
    } finally {
      await session.end();
    }
  });
  const base = join(dirs.packages ?? dirs.bootstrap!, 'root');

  const squashName = `${c.name}.squashfs`;
  await runStage('root', async (dir) => {
    const root = join(dir, 'root');
    await copyTree(base, root);
    const session = await openChroot(root, { network: true });
    let boot: Awaited<ReturnType<typeof bootFiles>>;
    try {
      if (isDebImage(c)) await releaseInitramfs(root, log, logFile);
      if (c.files) {
        o.progress(`root: copying in ${c.files}`);
        await logged(
          `copying ${c.files}`,
          'cp',
          ['-a', '--no-preserve=ownership', `${c.files}/.`, `${root}/`],
          log,
          logFile,
        );
      }
      if (c.hook) {
        if (isDebImage(c)) await aptInRoot(root, ['update'], log, logFile);
        o.progress(`root: running the hook ${c.hook}`);
        await logged(
          `the hook ${c.hook}`,
          c.hook,
          [root],
          (l) => {
            log(`hook: ${l}`);
            o.progress(`hook: ${l}`);
          },
          logFile,
          {
            ...process.env,
            ...CHROOT_ENV,
            PATH: process.env.PATH ?? CHROOT_ENV.PATH,
            VMSTUB_IMAGE: c.name,
            VMSTUB_ARCH: c.arch,
          },
          dirname(c.hook),
        );
      }
      const iso = c.formats.includes('iso') ? isoPlatform(c.arch) : undefined;
      if (iso?.grubFrom === 'image') {
        o.progress(`root: GRUB for ${c.arch} from ${c.distro.name}`);
        if (!c.hook) await aptInRoot(root, ['update'], log, logFile);
        await imageGrub(root, join(dir, 'grub'), iso.efi.package, log, logFile);
      }
      o.progress('root: accounts, host name, network, the final mirror');
      await applyToRoot(imageRootActions(c, existsSync(join(root, 'usr/sbin/sshd'))), root, log).catch(
        (e: unknown) => {
          throw new VmstubError(`root: configuring it failed: ${(e as Error).message} (log: ${logFile})`);
        },
      );
      await cleanPackages(root, c, log, logFile);
      dropBuildState(root);
      o.progress('root: boot files');
      boot = await bootFiles(root, dir, c, log, logFile);
    } finally {
      await session.end();
    }
    o.progress(`root: squashing (${c.compression})`);
    const out = join(dir, squashName);
    await squash(root, out, { compression: c.compression, level: c.compressionLevel, blockSize: '1M' });
    await checkSquashfs(out, c);
    copyFileSync(boot.vmlinuz, join(dir, `${c.name}.vmlinuz`));
    const initrd = join(dir, `${c.name}.initrd`);
    if (boot.initrd !== initrd) copyFileSync(boot.initrd, initrd);
    rmSync(root, { recursive: true, force: true });
  });

  await runStage('iso', async (dir) => {
    const work = join(dir, 'work');
    mkdirSync(work);
    const platform = isoPlatform(c.arch);
    o.progress(`iso: GRUB for ${platform.bios ? 'BIOS and UEFI' : 'UEFI'}, the ESP, xorriso`);
    await buildIso(
      {
        platform,
        grubEfiDir: grubModuleDir(
          platform.grubFrom === 'host' ? '/' : join(dirs.root!, 'grub'),
          platform.efi.target,
        ),
        kernel: join(dirs.root!, `${c.name}.vmlinuz`),
        initrd: join(dirs.root!, `${c.name}.initrd`),
        squashfs: join(dirs.root!, squashName),
        title: `${c.distro.name} ${c.name}`,
        label: volumeLabel(c.name),
        cmdline: c.cmdline,
      },
      work,
      join(dir, `${c.name}.iso`),
    );
    rmSync(work, { recursive: true, force: true });
  });

  return { stages: reports, dirs, log: logFile };
}

export async function buildImage(
  c: ImageConfig,
  o: ImageBuildOptions,
  cache = new StageCache(undefined, o.progress),
): Promise<ImageBuildResult> {
  const { stages: reports, dirs, log: logFile } = await buildStages(c, o, cache);
  if (dirs.iso) checkIsoFits(join(dirs.iso, `${c.name}.iso`), c.medium);
  const squashName = `${c.name}.squashfs`;
  mkdirSync(o.outDir, { recursive: true });
  const files: string[] = [];
  const outputs: ImageOutput[] = [];
  /** Each file is delivered and digested once, though squashfs and system name the same one. */
  const sums = new Map<string, string>();
  const deliverOnce = async (from: string): Promise<string> => {
    const path = join(o.outDir, basename(from));
    if (!sums.has(path)) {
      deliver(from, path);
      files.push(path);
      sums.set(path, await fileSha256(path));
    }
    return path;
  };
  const take = async (format: ImageFormat, from: string, extra: string[] = []) => {
    const path = await deliverOnce(from);
    for (const e of extra) await deliverOnce(e);
    outputs.push({ format, path, bytes: statSync(path).size, sha256: sums.get(path)! });
  };
  for (const f of c.formats) {
    if (f === 'iso') await take('iso', join(dirs.iso!, `${c.name}.iso`));
    else
      await take(f, join(dirs.root!, squashName), [
        join(dirs.root!, `${c.name}.vmlinuz`),
        join(dirs.root!, `${c.name}.initrd`),
      ]);
  }
  if (o.cacheMaxBytes !== undefined) {
    const removed = await cache.pruneToSize(o.cacheMaxBytes, Object.values(dirs));
    for (const r of removed) o.progress(`cache: removed ${r.split('/').pop()} (over the cache size)`);
  }
  return { name: c.name, outputs, files, stages: reports, log: logFile };
}

/** A squashfs is plausibly large, readable, and (for vmstub run) carries its boot files. */
async function checkSquashfs(path: string, c: ImageConfig): Promise<void> {
  const size = existsSync(path) ? statSync(path).size : 0;
  if (size < MIN_SQUASHFS_BYTES)
    throw new VmstubError(`${path} is ${formatSize(size)}: mksquashfs left junk (a full disk?); refusing it`);
  await checkSystemImage(path, c.arch, MIN_SQUASHFS_BYTES);
}
