/**
 * Trees of Debian's real binaries that the fixture distributions are made of (el-fixture.ts,
 * gentoo-fixture.ts), and what dpkg says about them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testCacheDir } from './fixture.js';

export const sh = (
  cmd: string,
  args: string[],
  o: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {},
) => execFileSync(cmd, args, { ...o, encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] });

export const digest = (...parts: string[]) =>
  createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);

/**
 * A Debian suite (bookworm unless said) with these packages, installed by mmdebstrap into a directory
 * (kept in the test cache: about two and a half minutes). Documentation is left out, as the stub's own
 * image does.
 */
export function debianTree(debianPackages: string[], suite = 'bookworm'): string {
  const sorted = [...debianPackages].sort();
  const dir = join(
    testCacheDir(),
    `debian-tree-${suite}-${digest(...(suite === 'bookworm' ? sorted : [suite, ...sorted]))}`,
  );
  if (existsSync(join(dir, '.complete'))) return join(dir, 'root');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  sh('mmdebstrap', [
    '--variant=essential',
    `--include=${debianPackages.join(',')}`,
    ...['/usr/share/man/*', '/usr/share/doc/*', '/usr/share/info/*', '/usr/share/locale/*'].map(
      (p) => `--dpkgopt=path-exclude=${p}`,
    ),
    // the mirror these machines reach can be older than unstable's Valid-Until allows
    ...(suite === 'bookworm' ? [] : ['--aptopt=Acquire::Check-Valid-Until "false"']),
    suite,
    join(dir, 'root'),
    'http://deb.debian.org/debian',
  ]);
  writeFileSync(join(dir, '.complete'), '');
  return join(dir, 'root');
}

export interface DebianPackage {
  name: string;
  version: string;
  essential: boolean;
  depends: string;
  provides: string;
  /** Paths as dpkg lists them (before the merged-/usr links). */
  files: string[];
}

/** Every installed package of the tree, with its relations and files, from dpkg's own database. */
export function installedPackages(root: string): DebianPackage[] {
  const admin = join(root, 'var/lib/dpkg');
  const out = sh('dpkg-query', [
    `--admindir=${admin}`,
    '-W',
    '-f',
    '${Package}\t${Version}\t${Architecture}\t${Essential}\t${Pre-Depends}\t${Depends}\t${Provides}\n',
  ]);
  return out
    .trim()
    .split('\n')
    .map((line) => {
      const [name, version, arch, essential, pre, dep, provides] = line.split('\t') as string[];
      const info = join(admin, 'info');
      const list = [`${name}:${arch}.list`, `${name}.list`].map((f) => join(info, f)).find(existsSync);
      return {
        name: name!,
        version: version!,
        essential: essential === 'yes',
        depends: [pre, dep].filter(Boolean).join(', '),
        provides: provides ?? '',
        files: list ? readFileSync(list, 'utf8').split('\n').filter(Boolean) : [],
      };
    });
}

/** /bin/sh -> /usr/bin/sh: the tree's /bin, /sbin and /lib are links into /usr. */
export function canonicalPath(path: string): string {
  return path.replace(/^\/(bin|sbin|lib|lib32|lib64|libx32)(\/|$)/, '/usr/$1$2');
}
