/**
 * What an image of an RPM distribution does differently: its root is bootstrapped as the installer
 * bootstraps the family (vmstub's RPM bootstrap, then the target's own dnf or yum; the installer's own
 * steps, run with the stub's tools on the host), its packages come from the target's package manager,
 * and its final repositories are the release's own or the final mirror's. Everything else (the hook,
 * accounts, squashfs, dracut's live initramfs, the ISO) is the image builder's, as for Debian.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RpmDistro } from '../catalog/types.js';
import { INSTALL_REPO_FILE, rpmRepos, yumRepoFile } from '../installer/render-rpm.js';
import { packageManagerArgv, rpmBootstrapSteps, rpmRepoStep } from '../installer/plan/rpm.js';
import { chroot, type Plan, type RootAction } from '../installer/plan/types.js';
import { resolveSpec, type InstallSpec } from '../installer/spec.js';
import type { ImageConfig } from './config.js';

export type RpmImageConfig = ImageConfig & { distro: RpmDistro };

export const isRpmImage = (c: ImageConfig): c is RpmImageConfig =>
  c.distro.family === 'el' || c.distro.family === 'fedora';

/** What every RPM image gets beyond the release's own set: vmstub's small initramfs is made with kmod. */
export const RPM_IMAGE_BASE_PACKAGES = ['kmod'];

/**
 * The install spec the image's bootstrap is planned from: the image's packages of the bootstrap
 * stage, its mirror and keyring, the C.UTF-8 locale (glibc's minimal language pack).
 */
export function rpmImageSpec(c: RpmImageConfig, packages: string[], mirror = c.mirror): InstallSpec {
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

export function rpmBootstrapPackages(c: RpmImageConfig, live: string[]): string[] {
  const extra = [c.kernel, ...RPM_IMAGE_BASE_PACKAGES];
  if (c.users.some((u) => u.sudo)) extra.push('sudo');
  if (c.formats.includes('iso')) extra.push(...live);
  return [...new Set(extra)].sort();
}

/** The installer's first pass, repositories and keys, and second pass, without its boot configuration. */
export function rpmImageBootstrapPlan(c: RpmImageConfig, packages: string[]): Plan {
  const spec = rpmImageSpec(c, packages);
  return { spec, distro: c.distro, steps: rpmBootstrapSteps(spec, c.distro, false) };
}

/** The bootstrap stage's inputs beyond the packages: the repositories, and the keys by their bytes. */
export function rpmBootstrapInputs(c: RpmImageConfig, packages: string[]) {
  const plan = rpmImageBootstrapPlan(c, packages);
  return {
    repos: rpmRepos(c.distro, plan.spec),
    steps: createHash('sha256').update(JSON.stringify(plan.steps)).digest('hex').slice(0, 16),
    keyring: c.keyring ? createHash('sha256').update(readFileSync(c.keyring)).digest('hex') : null,
  };
}

/** The target's own package manager installing the config's packages (run in the image's root). */
export function rpmInstallArgv(c: RpmImageConfig): string[] {
  return packageManagerArgv(c.distro, c.packages, c.recommends);
}

/**
 * The repositories the image keeps: the release's own files for its official mirror, else vmstub's
 * file rewritten for the final mirror (with the keys the bootstrap put in) and the release's set aside.
 */
export function rpmFinalRepoActions(c: RpmImageConfig): RootAction[] {
  const spec = rpmImageSpec(c, [], c.finalMirror);
  return [
    { kind: 'write', path: INSTALL_REPO_FILE, content: yumRepoFile(c.distro, spec) },
    ...rpmRepoStep(spec, c.distro).actions,
  ];
}

export const RPM_CLEAN = (c: RpmImageConfig) => chroot([c.distro.packageManager, 'clean', 'all']);

/** What an RPM mirror serves now: each repository's repomd.xml digest (undefined when one cannot be reached). */
export async function rpmMirrorSnapshot(
  c: RpmImageConfig,
  timeoutMs = 15_000,
): Promise<Record<string, string> | undefined> {
  const out: Record<string, string> = {};
  for (const r of rpmRepos(c.distro, rpmImageSpec(c, []))) {
    const url = `${r.baseurl.replace(/\/?$/, '/')}repodata/repomd.xml`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) return undefined;
      out[r.baseurl] = createHash('sha256')
        .update(Buffer.from(await res.arrayBuffer()))
        .digest('hex')
        .slice(0, 16);
    } catch {
      return undefined;
    }
  }
  return out;
}
