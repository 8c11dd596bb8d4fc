/**
 * The RPM bootstrap's first pass: from nothing to a root in which the target's own dnf or yum can
 * run. Metadata and packages are fetched and verified here (repomd -> primary checksums -> package
 * checksums); rpm installs them in one transaction with signatures enforced against the keys given,
 * and with its own dependency check as a second opinion on our resolver.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { run } from '../../util/exec.js';
import { readDecompressed } from './decompress.js';
import { download, fileChecksum, type FetchOptions } from './fetch.js';
import {
  FilelistsReader,
  PrimaryReader,
  nevra,
  parseRepomd,
  type RepomdEntry,
  type RpmPackage,
} from './metadata.js';
import { MissingFiles, Resolver, type Resolution } from './resolve.js';
import { rpmPolicyEnv } from './policy.js';
import { checkSignatures, expiryNotices, RPM_ENV } from './signatures.js';
import { readKeyFile, type OpenPgpKey } from '../openpgp.js';

export interface RpmRepo {
  id: string;
  /** $basearch already filled in; a trailing / is added when missing. */
  baseurl: string;
}

export interface RpmBootstrapOptions {
  repos: RpmRepo[];
  /** The architecture packages are for; noarch always goes with it. */
  arch: string;
  packages: string[];
  root: string;
  /** Where the rpm database goes inside root: the target's own place. */
  dbpath: string;
  /** Key files (on this machine) imported before anything is installed; every package must verify. */
  keys: string[];
  /**
   * When no independent copy of the distribution's key exists: the first package named (its release
   * package) is installed unverified, these key files (inside root) imported from it, the release
   * package checked against them, and everything else verified as usual.
   */
  keysFromFirstPackage?: string[];
  cacheDir: string;
  exclude?: string[];
  fetch?: FetchOptions;
  log?: (line: string) => void;
  /** Downloads at once. */
  parallel?: number;
  /** Let rpm accept the SHA-1 self-signatures of an old release's key (policy.ts); never for packages. */
  sha1KeyBindings?: boolean;
}

export interface RepoMetadata {
  repo: RpmRepo;
  entries: RepomdEntry[];
  packages: RpmPackage[];
}

const withSlash = (u: string) => (u.endsWith('/') ? u : `${u}/`);
const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

async function cached(
  url: string,
  dir: string,
  name: string,
  entry: RepomdEntry,
  o: RpmBootstrapOptions,
): Promise<string> {
  const path = join(dir, `${entry.checksum.value.slice(0, 16)}-${name}`);
  if ((await fileChecksum(path, entry.checksum.type)) !== entry.checksum.value.toLowerCase()) {
    o.log?.(`fetch ${url}`);
    await download(url, path, entry.checksum, o.fetch);
  }
  return path;
}

/** repomd.xml, then primary.xml (checksum verified), read into packages of the wanted architectures. */
export async function loadRepo(repo: RpmRepo, o: RpmBootstrapOptions): Promise<RepoMetadata> {
  const base = withSlash(repo.baseurl);
  const dir = join(o.cacheDir, 'repos', safe(base));
  mkdirSync(dir, { recursive: true });
  const repomdPath = join(dir, 'repomd.xml');
  o.log?.(`fetch ${base}repodata/repomd.xml`);
  await download(`${base}repodata/repomd.xml`, repomdPath, undefined, o.fetch);
  let entries: RepomdEntry[];
  try {
    entries = parseRepomd(readFileSync(repomdPath, 'utf8'));
  } catch (e) {
    throw new Error(`${base}repodata/repomd.xml: ${(e as Error).message}`, { cause: e });
  }
  const primary = entries.find((e) => e.type === 'primary');
  if (!primary) throw new Error(`${base}repodata/repomd.xml lists no primary metadata`);
  const path = await cached(base + primary.href, dir, basename(primary.href), primary, o);
  const reader = new PrimaryReader(new Set([o.arch, 'noarch']), repo.id);
  try {
    await readDecompressed(path, (t) => reader.write(t));
    return { repo, entries, packages: reader.end() };
  } catch (e) {
    throw new Error(`${base}${primary.href}: ${(e as Error).message}`, { cause: e });
  }
}

/** Every repository's metadata, one after another (each may be large). */
export async function loadRepos(o: RpmBootstrapOptions): Promise<RepoMetadata[]> {
  const meta: RepoMetadata[] = [];
  for (const repo of o.repos) meta.push(await loadRepo(repo, o));
  return meta;
}

/** The files filelists.xml says the given paths belong to, by package checksum. */
async function findFiles(
  meta: RepoMetadata[],
  paths: string[],
  o: RpmBootstrapOptions,
): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const m of meta) {
    const entry = m.entries.find((e) => e.type === 'filelists');
    if (!entry) continue;
    const base = withSlash(m.repo.baseurl);
    const path = await cached(
      base + entry.href,
      join(o.cacheDir, 'repos', safe(base)),
      basename(entry.href),
      entry,
      o,
    );
    const reader = new FilelistsReader(new Set(paths));
    await readDecompressed(path, (t) => reader.write(t));
    for (const [id, files] of reader.end()) found.set(id, [...(found.get(id) ?? []), ...files]);
  }
  return found;
}

/** Which packages the bootstrap installs, reading filelists only when a file dependency needs it. */
export async function solve(meta: RepoMetadata[], o: RpmBootstrapOptions): Promise<Resolution> {
  const resolver = new Resolver(meta.flatMap((m) => m.packages));
  const exclude = new Set(o.exclude ?? []);
  try {
    return resolver.resolve(o.packages, exclude);
  } catch (e) {
    if (!(e instanceof MissingFiles)) throw e;
    o.log?.(`reading filelists for ${e.paths.join(', ')}`);
    resolver.addFiles(await findFiles(meta, e.paths, o));
    try {
      return resolver.resolve(o.packages, exclude);
    } catch (again) {
      if (again instanceof MissingFiles)
        throw new Error(`nothing provides ${again.paths.join(', ')}`, { cause: again });
      throw again;
    }
  }
}

async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await f(items[next++]!);
    }),
  );
}

/** Every package fetched into the cache and checked against primary's checksum; their paths, in order. */
export async function fetchPackages(
  pkgs: RpmPackage[],
  meta: RepoMetadata[],
  o: RpmBootstrapOptions,
): Promise<string[]> {
  const dir = join(o.cacheDir, 'packages');
  mkdirSync(dir, { recursive: true });
  const baseOf = new Map(meta.map((m) => [m.repo.id, withSlash(m.repo.baseurl)]));
  const paths = pkgs.map((p) => join(dir, `${p.checksum.value.slice(0, 16)}-${basename(p.href)}`));
  let done = 0;
  await pool(
    pkgs.map((p, i) => ({ p, path: paths[i]! })),
    o.parallel ?? 4,
    async ({ p, path }) => {
      if ((await fileChecksum(path, p.checksum.type)) !== p.checksum.value.toLowerCase()) {
        const url = (p.base ? withSlash(p.base) : baseOf.get(p.repo)!) + p.href;
        await download(url, path, p.checksum, o.fetch);
      }
      done++;
      o.log?.(`downloaded ${done}/${pkgs.length} ${nevra(p)}`);
    },
  );
  return paths;
}

async function rpmRun(argv: string[], what: string, env: NodeJS.ProcessEnv): Promise<string> {
  const [cmd, ...args] = argv;
  const r = await run(cmd!, args, { env: { ...RPM_ENV, ...env } });
  const out = r.stdout.toString();
  if (r.code !== 0) {
    const lines = `${r.stderr}\n${out}`
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !/should not be used directly|assuming you know/.test(l));
    throw new Error(`${what} failed: ${lines.slice(0, 6).join('; ') || `exit ${r.code}`}`);
  }
  return out;
}

/** Signatures are required (a missing key is fatal), whatever the host rpm's default policy. */
const VERIFY = ['--define', '_pkgverify_level signature'];

export interface BootstrapResult {
  resolution: Resolution;
  files: string[];
}

export async function rpmBootstrap(o: RpmBootstrapOptions): Promise<BootstrapResult> {
  const meta = await loadRepos(o);
  const resolution = await solve(meta, o);
  o.log?.(`${resolution.packages.length} packages: ${resolution.packages.map((p) => p.name).join(' ')}`);
  const files = await fetchPackages(resolution.packages, meta, o);
  const db = ['--root', o.root, '--dbpath', o.dbpath];
  const policy = rpmPolicyEnv(o.sha1KeyBindings === true, o.cacheDir);
  const rpm = (argv: string[], what: string) => rpmRun(argv, what, policy);
  const keys: OpenPgpKey[] = [];
  const importKeys = async (paths: string[]) => {
    for (const path of paths) {
      const read = await readKeyFile(path);
      await rpm(['rpmkeys', ...db, '--import', path], `importing the key ${path}`);
      keys.push(...read);
      for (const notice of expiryNotices(read, new Date())) o.log?.(`warning: ${notice}`);
    }
  };
  mkdirSync(join(o.root, o.dbpath), { recursive: true });
  await rpm(['rpm', ...db, '--initdb'], 'rpm --initdb');
  await importKeys(o.keys);
  const nameOf = new Map(files.map((f, i) => [f, basename(resolution.packages[i]!.href)]));
  const verify = (paths: string[]) =>
    checkSignatures(paths, db, keys, { names: paths.map((f) => nameOf.get(f)!), env: policy });
  let rest = files;
  if (o.keysFromFirstPackage?.length) {
    const first = files[resolution.packages.findIndex((p) => p.name === o.packages[0])];
    if (!first) throw new Error(`${o.packages[0]} is not among the packages to install`);
    o.log?.(`installing ${basename(first)} unverified, for its keys`);
    await rpm(
      ['rpm', ...db, '-U', '--nosignature', '--noscripts', '--nodeps', first],
      `installing ${basename(first)}`,
    );
    await importKeys(
      o.keysFromFirstPackage.flatMap((k) => {
        const path = join(o.root, k);
        if (!existsSync(path)) throw new Error(`${basename(first)} has no ${k}`);
        return statSync(path).isDirectory()
          ? readdirSync(path)
              .sort()
              .map((f) => join(path, f))
          : [path];
      }),
    );
    await verify([first]);
    rest = files.filter((f) => f !== first);
  }
  o.log?.(`checking ${rest.length} signatures`);
  await verify(rest);
  o.log?.(`rpm: installing ${rest.length} packages into ${o.root}`);
  await rpm(['rpm', ...db, ...VERIFY, '-U', '--quiet', ...rest], 'rpm -U');
  return { resolution, files };
}
