/**
 * The package cache for one install: started for as long as the work that downloads runs (a bootstrap
 * on the host, the stub's install), then closed with a line saying what it served. Why a proxy and not
 * a share or apt-cacher-ng: docs/architecture.md, "The package cache".
 */
import { join } from 'node:path';
import type { InstallSpec } from '../installer/spec.js';
import { cacheDir } from '../util/paths.js';
import { startPackageCache, type PackageCacheServer } from './proxy.js';

export { GUEST_HOST } from './proxy.js';

export const packageCacheDir = (): string => join(cacheDir(), 'packages');

/** Why this install does without the cache, or undefined when it uses it. */
export function packageCacheSkipped(spec: InstallSpec, disabled: boolean): string | undefined {
  if (disabled) return '--no-package-cache';
  // The user's proxy is where their downloads must go; apt and dnf are pointed at it, not at us.
  if (spec.proxy) return `--proxy ${spec.proxy}: downloads go through it`;
  return undefined;
}

/**
 * Runs work with a package cache (or without, given undefined), closing it after and saying what it
 * served; when work fails, what it fetched from the mirror is not kept.
 */
export async function withPackageCache<T>(
  use: boolean,
  note: (line: string) => void,
  work: (cache: PackageCacheServer | undefined) => Promise<T>,
): Promise<T> {
  if (!use) return work(undefined);
  const cache = await startPackageCache({ dir: packageCacheDir(), note });
  try {
    return await work(cache);
  } catch (e) {
    // A failure may be the mirror's wrong bytes, which apt and dnf refuse but cannot ask for again:
    // kept, they would fail every later attempt.
    const forgotten = cache.forgetFetched();
    if (forgotten)
      note(
        `package cache: not keeping the ${forgotten} files this failed attempt fetched; the next one fetches them again`,
      );
    throw e;
  } finally {
    note(cache.summary());
    await cache.close();
  }
}
