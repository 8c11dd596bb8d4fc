/**
 * The package cache on the host's bootstrap: Debian 12's root bootstrapped natively (mmdebstrap, as
 * create does it on the host) straight from deb.debian.org, through an empty package cache, and
 * through the cache it filled, in rounds, so the machine's drift falls on all three alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StageCache } from '../src/image/stage-cache.js';
import { cachedRoot } from '../src/installer/root-cache.js';
import { resolveSpec } from '../src/installer/spec.js';
import type { BenchResult } from './report.js';

const ROUNDS = 2;

export async function benchPackageCache(): Promise<BenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'bench-package-cache-'));
  const before = process.env.VMSTUB_CACHE;
  const spec = () =>
    resolveSpec({ distro: 'debian12' }, { hostname: 'bench', timezone: 'UTC', sshKeys: [], arch: 'x86_64' });
  const roots = new StageCache(join(work, 'roots'));
  const time = async (packageCache: boolean, cacheDir: string) => {
    process.env.VMSTUB_CACHE = cacheDir;
    const t0 = Date.now();
    await cachedRoot(spec(), { cache: roots, fresh: true, packageCache, note: () => {} });
    return Date.now() - t0;
  };
  const rows = {
    direct: [] as number[],
    empty: [] as number[],
    full: [] as number[],
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const cache = join(work, `cache-${round}`);
      rows.direct.push(await time(false, cache));
      rows.empty.push(await time(true, cache));
      rows.full.push(await time(true, cache));
    }
  } finally {
    if (before === undefined) delete process.env.VMSTUB_CACHE;
    else process.env.VMSTUB_CACHE = before;
    rmSync(work, { recursive: true, force: true });
  }
  return {
    name: 'package cache: the bootstrap on the host',
    description:
      "Debian 12's root as `vmstub create` bootstraps it on the host (mmdebstrap natively, packed as a tar), downloading from deb.debian.org directly (`--no-package-cache`), through an empty package cache, and through the same cache full.",
    rows: [
      { label: 'mmdebstrap on the host, straight from the mirror', values: rows.direct },
      { label: 'the same through an empty package cache', values: rows.empty },
      { label: 'the same through the full package cache', values: rows.full },
    ],
    summary: `${ROUNDS} rounds, each of the three in turn; medians.`,
  };
}
