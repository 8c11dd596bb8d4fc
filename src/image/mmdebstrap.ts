import { writeFileSync } from 'node:fs';
import { VmstubError } from '../util/errors.js';
import { requireTool, run } from '../util/exec.js';
import { isRoot } from '../util/paths.js';
import type { Arch } from '../util/arch.js';
import { DEBIAN_ARCH } from '../util/arch.js';

/** One apt source: a mirror, a suite and its components. */
export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
}

export interface MmdebstrapRecipe {
  suite: string;
  arch: Arch;
  sources: AptSource[];
  variant: 'essential' | 'apt' | 'required' | 'minbase' | 'important' | 'standard';
  packages: string[];
  keyring?: string;
  /** dpkg path-exclude/path-include rules (without the --dpkgopt=). */
  dpkgOptions: string[];
  /** mmdebstrap --essential-hook values: after the essential packages, before the others. */
  essentialHooks?: string[];
  /** mmdebstrap --customize-hook values, run in order. */
  customizeHooks: string[];
}

export const sourceLine = (s: AptSource): string => `deb ${s.uri} ${s.suite} ${s.components.join(' ')}`;

/** mmdebstrap's command line: root mode as root, else unshare (user namespaces through /etc/subuid). */
export function mmdebstrapArgs(r: MmdebstrapRecipe, target: string, root = isRoot()): string[] {
  return [
    `--mode=${root ? 'root' : 'unshare'}`,
    `--variant=${r.variant}`,
    `--architectures=${DEBIAN_ARCH[r.arch]}`,
    ...(r.packages.length ? [`--include=${[...r.packages].sort().join(',')}`] : []),
    ...(r.keyring ? [`--keyring=${r.keyring}`] : []),
    ...r.dpkgOptions.map((o) => `--dpkgopt=${o}`),
    ...(r.essentialHooks ?? []).map((h) => `--essential-hook=${h}`),
    ...r.customizeHooks.map((h) => `--customize-hook=${h}`),
    r.suite,
    target,
    ...r.sources.map(sourceLine),
  ];
}

/**
 * Runs mmdebstrap, passing its progress lines on and keeping its whole output in logFile; fails with
 * its first error line (a hook's own error output comes before mmdebstrap's summary).
 */
export async function mmdebstrap(
  r: MmdebstrapRecipe,
  target: string,
  logFile: string,
  onLine: (line: string) => void,
): Promise<void> {
  const tool = requireTool('mmdebstrap', 'mmdebstrap');
  const result = await run(tool, mmdebstrapArgs(r, target), {
    timeoutMs: 60 * 60 * 1000,
    killWithParent: true,
    onStderrLine: (l) => {
      if (/^I: /.test(l)) onLine(l.slice(3));
    },
  });
  writeFileSync(logFile, result.stderr);
  const lines = result.stderr.split('\n').filter(Boolean);
  if (result.code !== 0) {
    const hookError = lines.find(
      (l) => !/^[IWE]: /.test(l) && /error|fail|cannot|not found|no such/i.test(l),
    );
    const why = hookError ?? lines.find((l) => l.startsWith('E: '))?.slice(3) ?? 'no output';
    throw new VmstubError(`mmdebstrap failed: ${why} (log: ${logFile})`);
  }
}

/** The `Date:` of a Release file, or undefined. */
export function releaseDate(inRelease: string): string | undefined {
  return /^Date: (.+)$/m.exec(inRelease)?.[1]?.trim();
}

/**
 * What the mirror serves now, as the dates of each suite's InRelease: part of a cached root
 * filesystem's key, so the cache follows the archive. Undefined when a mirror cannot be reached.
 */
export async function mirrorSnapshot(
  sources: AptSource[],
  timeoutMs = 15_000,
): Promise<Record<string, string> | undefined> {
  const out: Record<string, string> = {};
  for (const s of sources) {
    const url = `${s.uri.replace(/\/$/, '')}/dists/${s.suite}/InRelease`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) return undefined;
      const date = releaseDate(await res.text());
      if (!date) return undefined;
      out[`${s.uri} ${s.suite}`] = date;
    } catch {
      return undefined;
    }
  }
  return out;
}
