/**
 * The families whose image root is bootstrapped by the installer's own steps (the RPM family: vmstub's
 * RPM bootstrap, then the target's dnf or yum; Gentoo: the verified stage3, then emerge), run with the
 * stub's tools on the host (installer/stub-root.ts). What differs between them is here, as data and
 * small functions; the hook, accounts, squashfs, dracut's live initramfs and the ISO are the image
 * builder's, as for Debian.
 */
import { readFileSync } from 'node:fs';
import type { GentooDistro, RpmDistro } from '../catalog/types.js';
import { INSTALL_REPO_FILE, rpmRepos, yumRepoFile } from '../installer/render-rpm.js';
import {
  gentooBootstrapSteps,
  gentooEmergeArgv,
  gentooMirrorsLine,
  gentooNetworkActions,
} from '../installer/plan/gentoo.js';
import {
  packageManagerArgv,
  rpmBootstrapSteps,
  rpmNetworkActions,
  rpmRepoStep,
} from '../installer/plan/rpm.js';
import { chroot, type Plan, type RootAction, type Step } from '../installer/plan/types.js';
import { resolveSpec, type InstallSpec } from '../installer/spec.js';
import type { ImageConfig } from './config.js';
import { sha256Of } from '../util/digest.js';

type PlannedConfig<D> = ImageConfig & { distro: D };

export interface PlannedFamily<D> {
  /** The kernel package an image gets unless its config names one. */
  kernel: string;
  /** What an image of the family adds to the bootstrap: vmstub's small initramfs is made with kmod. */
  base: string[];
  /** With an ISO: dracut's live module, and zstd it compresses with. */
  live: string[];
  sudoGroup: string;
  /** The installer's machine-independent steps, without its boot configuration for a disk. */
  bootstrapSteps(spec: InstallSpec, d: D): Step[];
  /** What the mirror serves now, as digests of its index files; undefined when it cannot be reached. */
  indexUrls(c: PlannedConfig<D>, spec: InstallSpec): string[];
  /** The config's packages installed by the target's own package manager. */
  installArgv(c: PlannedConfig<D>): string[];
  /** The package manager's downloads dropped, where it has a command for it. */
  cleanArgv(c: PlannedConfig<D>): string[] | undefined;
  /** The network, and where the image's package manager looks afterwards (the final mirror). */
  rootActions(c: PlannedConfig<D>): RootAction[];
}

const RPM: PlannedFamily<RpmDistro> = {
  kernel: 'kernel',
  base: ['kmod'],
  live: ['dracut', 'dracut-live', 'dracut-config-generic', 'zstd'],
  sudoGroup: 'wheel',
  bootstrapSteps: (spec, d) => rpmBootstrapSteps(spec, d, false),
  indexUrls: (c, spec) =>
    rpmRepos(c.distro, spec).map((r) => `${r.baseurl.replace(/\/?$/, '/')}repodata/repomd.xml`),
  installArgv: (c) => packageManagerArgv(c.distro, c.packages, c.recommends),
  cleanArgv: (c) => [c.distro.packageManager, 'clean', 'all'],
  rootActions: (c) => {
    // The release's own repository files for its official mirror, else vmstub's for the final one.
    const spec = plannedSpec(c, [], c.finalMirror);
    return [
      ...rpmNetworkActions(c.distro),
      { kind: 'write', path: INSTALL_REPO_FILE, content: yumRepoFile(c.distro, spec) },
      ...rpmRepoStep(spec, c.distro).actions,
    ];
  },
};

const GENTOO: PlannedFamily<GentooDistro> = {
  kernel: 'sys-kernel/gentoo-kernel-bin',
  base: ['sys-apps/kmod'],
  // Gentoo's dracut carries every module, dmsquash-live too.
  live: ['sys-kernel/dracut', 'app-arch/zstd'],
  sudoGroup: 'wheel',
  bootstrapSteps: (spec, d) => gentooBootstrapSteps(spec, d, false),
  indexUrls: (c) => {
    const stage3 = c.distro.stage3[c.arch]!;
    return [`${c.mirror.replace(/\/+$/, '')}/${stage3.dir}/latest-${stage3.flavour}.txt`];
  },
  installArgv: (c) => gentooEmergeArgv(c.packages),
  cleanArgv: () => undefined,
  rootActions: (c) => [
    ...gentooNetworkActions(),
    // The build's mirror goes from make.conf; a final mirror of the config's own takes its place.
    chroot([
      'sh',
      '-c',
      [
        "sed -i '/^GENTOO_MIRRORS=/d' /etc/portage/make.conf",
        ...(c.finalMirror !== c.distro.mirror
          ? [`echo '${gentooMirrorsLine(c.finalMirror)}' >> /etc/portage/make.conf`]
          : []),
      ].join(' && '),
    ]),
  ],
};

export type PlannedImageConfig = PlannedConfig<RpmDistro> | PlannedConfig<GentooDistro>;

export const isPlannedImage = (c: ImageConfig): c is PlannedImageConfig => c.distro.family !== 'deb';

/** The family's table, typed for the config's distribution. */
export function plannedFamily(c: PlannedImageConfig): PlannedFamily<PlannedImageConfig['distro']> {
  return (c.distro.family === 'gentoo' ? GENTOO : RPM) as PlannedFamily<PlannedImageConfig['distro']>;
}

/** The kernel package an image of this family gets by default. */
export const plannedKernel = (family: 'el' | 'fedora' | 'gentoo') =>
  (family === 'gentoo' ? GENTOO : RPM).kernel;

/** What an image adds to the release's package set, per family (the test fixtures carry it). */
export const IMAGE_PACKAGES = {
  rpm: [...RPM.base, ...RPM.live],
  gentoo: [...GENTOO.base, ...GENTOO.live],
} as const;

/**
 * The install spec the image's bootstrap is planned from: the packages of the bootstrap stage, the
 * image's mirror and keyring, the C.UTF-8 locale (glibc's minimal language pack, no locale to generate).
 */
function plannedSpec(c: PlannedImageConfig, packages: string[], mirror = c.mirror): InstallSpec {
  return resolveSpec(
    {
      distro: c.distro.id,
      arch: c.arch,
      target: 'directory',
      locale: 'C.UTF-8',
      packages,
      ...(mirror !== c.distro.mirror ? { mirror } : {}),
      ...(c.keyring ? { keyring: c.keyring } : {}),
    },
    { hostname: c.hostname, timezone: 'UTC', sshKeys: [], arch: c.arch },
    c.file,
  );
}

export function plannedBootstrapPackages(c: PlannedImageConfig): string[] {
  const f = plannedFamily(c);
  const extra = [c.kernel, ...f.base];
  if (c.users.some((u) => u.sudo)) extra.push(c.distro.family === 'gentoo' ? 'app-admin/sudo' : 'sudo');
  if (c.formats.includes('iso')) extra.push(...f.live);
  return [...new Set(extra)].sort();
}

export function plannedBootstrapPlan(c: PlannedImageConfig, packages: string[]): Plan {
  const spec = plannedSpec(c, packages);
  return { spec, distro: c.distro, steps: plannedFamily(c).bootstrapSteps(spec, c.distro) };
}

/** The bootstrap stage's inputs beyond the packages: the installer's steps, and the keyring by its bytes. */
export function plannedBootstrapInputs(c: PlannedImageConfig, packages: string[]) {
  return {
    steps: sha256Of(JSON.stringify(plannedBootstrapPlan(c, packages).steps)).slice(0, 16),
    keyring: c.keyring ? sha256Of(readFileSync(c.keyring)) : null,
  };
}

/** What the mirror serves now: a digest of each index file (repomd.xml, the stage3 pointer). */
export async function plannedMirrorSnapshot(
  c: PlannedImageConfig,
  timeoutMs = 15_000,
): Promise<Record<string, string> | undefined> {
  const out: Record<string, string> = {};
  for (const url of plannedFamily(c).indexUrls(c, plannedSpec(c, []))) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) return undefined;
      out[url] = sha256Of(Buffer.from(await res.arrayBuffer())).slice(0, 16);
    } catch {
      return undefined;
    }
  }
  return out;
}
