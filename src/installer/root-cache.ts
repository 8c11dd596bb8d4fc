/**
 * Root filesystems bootstrapped on the host and kept for later creates. The host runs the same
 * bootstrap steps the stub would (the plan's own, relocated into a directory), natively; what comes
 * out is stripped of everything that would make two machines the same, and kept as a plain tar stream
 * the stub unpacks from a read-only disk. A later create with the same recipe and mirror state gets it
 * again without bootstrapping; the stub then runs only the machine-specific steps.
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { findDistro } from '../catalog/index.js';
import type { DebDistro } from '../catalog/types.js';
import { mirrorSnapshot, type AptSource } from '../image/mmdebstrap.js';
import { StageCache, stageKey, type StageInputs } from '../image/stage-cache.js';
import { fileSha256 } from '../util/digest.js';
import { VmstubError } from '../util/errors.js';
import { requireTool, run, which } from '../util/exec.js';
import { removeTree } from '../util/mounts.js';
import { cacheDir, isRoot } from '../util/paths.js';
import type { Arch } from '../util/arch.js';
import { foreignArchProblem } from '../image/foreign-arch.js';
import { hostArch } from '../vm/accel.js';
import { packageCacheSkipped, withPackageCache } from '../package-cache/index.js';
import { executePlan, InstallFailure } from './execute.js';
import { hostBootstrapPlan, type Plan } from './plan/index.js';
import { MACHINE_IDENTITY_FILES } from './plan/common.js';
import { debMirrors } from './render.js';
import type { InstallSpec } from './spec.js';

/** Bumped when what a cached root holds changes for the same inputs (what is stripped, the tar's form). */
const ROOT_CACHE_VERSION = 1;
/** Cached roots kept per distribution and architecture (each a few hundred MB). */
const KEEP_PER_RELEASE = 2;
const TARBALL = 'root.tar';
const INSTALLED = 'installed.json';
const CHECKSUM = 'root.tar.sha256';
/** Below this much free space, a failed bootstrap is put down to a full disk. */
const LOW_SPACE_BYTES = 256 * 1024 * 1024;

export const BOOTSTRAP_SITES = ['auto', 'host', 'guest'] as const;
export type BootstrapSite = (typeof BOOTSTRAP_SITES)[number];

/**
 * What never goes into a cached root: the machine's identity (the stub's steps make it anew: an empty
 * machine-id, host keys with ssh-keygen -A, the host name), and the host's own resolv.conf, which
 * systemd-resolved's postinst keeps as a backup.
 */
export const NOT_CACHED = [
  '/etc/machine-id',
  '/etc/hostname',
  ...MACHINE_IDENTITY_FILES,
  '/etc/.resolv.conf.systemd-resolved.bak',
];

export interface HostAbilities {
  root: boolean;
  mmdebstrap: boolean;
  arch?: Arch;
  /** Why the host cannot run the target architecture's binaries (binfmt_misc), when it is another. */
  emulation?: string;
  /** The keyring the bootstrap's sources name exists on the host. */
  keyring: boolean;
}

export function hostAbilities(spec: InstallSpec): HostAbilities {
  const plan = hostBootstrapPlan(spec);
  const keyrings = plan ? signedByKeyrings(plan) : [];
  return {
    root: isRoot(),
    mmdebstrap: which('mmdebstrap') !== undefined,
    arch: hostArch(),
    emulation: foreignArchProblem(spec.arch, hostArch()),
    keyring: keyrings.length > 0 && keyrings.every((k) => existsSync(k)),
  };
}

/**
 * Where the bootstrap runs. auto: on the host where it can (natively it is many times faster than in a
 * guest under TCG, and only there can its result be kept), in the guest under KVM (about as fast, and
 * nothing is needed on the host); a root cached already is used wherever it was made.
 */
export function chooseBootstrapSite(
  spec: InstallSpec,
  requested: BootstrapSite,
  accel: 'kvm' | 'tcg',
  host: HostAbilities,
  cached: boolean,
): { site: 'host' | 'guest'; reason: string } {
  const why = cannotOnHost(spec, host);
  if (requested === 'guest') return { site: 'guest', reason: 'asked for (--bootstrap-on guest)' };
  if (requested === 'host') {
    if (why) throw new VmstubError(`--bootstrap-on host: ${why}`, 2);
    return { site: 'host', reason: 'asked for (--bootstrap-on host)' };
  }
  if (why) return { site: 'guest', reason: why };
  if (cached) return { site: 'host', reason: 'a root filesystem of this recipe is cached' };
  if (accel === 'kvm') return { site: 'guest', reason: 'KVM runs the bootstrap in the stub about as fast' };
  return { site: 'host', reason: 'under TCG the host bootstraps many times faster than the stub' };
}

function cannotOnHost(spec: InstallSpec, host: HostAbilities): string | undefined {
  const d = findDistro(spec.distro);
  if (d.family !== 'deb') return `the host bootstraps only Debian and Ubuntu so far, not ${d.name}`;
  if (spec.target !== 'disk') return 'only an install onto the data disk is bootstrapped on the host';
  if (spec.bootstrap !== 'mmdebstrap') return 'only mmdebstrap bootstraps on the host';
  if (!host.root) return 'the host bootstraps as root only (mmdebstrap --mode=root)';
  if (!host.mmdebstrap) return 'mmdebstrap is not installed on the host (apt-get install mmdebstrap)';
  // Another architecture's root is bootstrapped through qemu-user-static, still many times faster
  // than in a whole emulated machine.
  if (host.arch !== spec.arch && host.emulation) return host.emulation;
  if (!host.keyring) return 'the keyring that signs the mirror is not on the host';
  return undefined;
}

function signedByKeyrings(plan: Plan): string[] {
  const out = new Set<string>();
  for (const s of plan.steps)
    for (const a of s.actions)
      if (a.kind === 'exec')
        for (const arg of a.argv) {
          const m = /\[signed-by=([^\]\s]+)\]/.exec(arg);
          if (m) out.add(m[1]!);
        }
  return [...out];
}

const short = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

/**
 * The inputs a cached root is keyed by, each named so a miss can say what differed: the packages, the
 * sources, the staged files, the bootstrap tool's other options and version, and the mirror's state.
 */
export function rootInputs(plan: Plan, tool: string, snapshot: Record<string, string>): StageInputs {
  const packages: string[] = [];
  const sources: string[] = [];
  const options: string[] = [];
  const files: Record<string, string> = {};
  for (const step of plan.steps)
    for (const a of step.actions) {
      if (a.kind === 'write') files[`${a.in ?? 'target'}:${a.path}`] = short(a.content);
      else if (a.kind === 'exec')
        for (const arg of a.argv) {
          if (arg.startsWith('--include=')) packages.push(...arg.slice('--include='.length).split(','));
          else if (arg.startsWith('deb ')) sources.push(arg);
          else options.push(arg);
        }
      else options.push(a.kind);
    }
  return {
    version: ROOT_CACHE_VERSION,
    distro: plan.distro.id,
    arch: plan.spec.arch,
    tool,
    packages: packages.sort(),
    sources,
    files,
    options,
    snapshot,
  };
}

export function rootSources(spec: InstallSpec): AptSource[] {
  const d = findDistro(spec.distro) as DebDistro;
  const { mirror, securityMirror } = debMirrors(d, spec);
  return [
    { uri: mirror, suite: d.suite, components: d.components },
    { uri: mirror, suite: d.updatesSuite, components: d.components },
    { uri: securityMirror, suite: d.securitySuite, components: d.components },
  ];
}

export interface CachedRoot {
  /** The tar stream to attach. */
  tarball: string;
  hit: boolean;
  key: string;
  /** What the decision was made from, one line each (create --explain). */
  explanation: string[];
  /** Packages and versions the root holds. */
  installed: Record<string, string>;
}

export interface RootOptions {
  fresh?: boolean;
  /** Download through vmstub's package cache (default: yes). */
  packageCache?: boolean;
  note: (line: string) => void;
  cache?: StageCache;
}

const cacheNameOf = (spec: InstallSpec) => `${spec.distro}-${spec.arch}`;

/** The cache of roots, under the vmstub cache. */
export const rootCache = (note: (line: string) => void = () => {}) =>
  new StageCache(join(cacheDir(), 'roots'), note);

/** Whether a root of this spec's recipe is cached at all (at any mirror state). */
export function hasCachedRoot(spec: InstallSpec, cache = rootCache()): boolean {
  return cache.newest(cacheNameOf(spec)) !== undefined;
}

/**
 * A root filesystem for this spec: the cached one whose recipe and mirror state match, or a new one
 * bootstrapped on the host now (and kept). Offline, the newest cached root of the same recipe is used,
 * said in a line.
 */
export async function cachedRoot(given: InstallSpec, o: RootOptions): Promise<CachedRoot> {
  const cache = o.cache ?? rootCache(o.note);
  const spec = withAptReadableKeyring(given, cache.root);
  const plan = hostBootstrapPlan(spec);
  if (!plan) throw new VmstubError(`${spec.distro}: no bootstrap on the host for this install`);
  const name = cacheNameOf(spec);
  const tool = await toolVersion();
  const explanation: string[] = [];
  let snapshot = await mirrorSnapshot(rootSources(spec));
  if (!snapshot) {
    const offline = newestWithRecipe(cache, name, rootInputs(plan, tool, {}));
    if (!offline)
      throw new VmstubError(
        `cannot reach ${rootSources(spec)[0]!.uri} (its InRelease files), and no root filesystem of this recipe is cached`,
      );
    snapshot = offline.snapshot;
    const line = `cannot reach the mirror: using the root cached ${offline.when}, made from the mirror as it was then`;
    o.note(line);
    explanation.push(line);
  } else explanation.push(`mirror state: ${Object.values(snapshot).join(', ')}`);
  const inputs = rootInputs(plan, tool, snapshot);
  const key = stageKey(inputs);
  const seen = cache.explain(name, key, inputs);
  if (o.fresh) explanation.push('--fresh: bootstrapping again whatever is cached');
  else if (seen.hit) explanation.push(`cached root ${name}-${key}: recipe and mirror state match`);
  else if (seen.first) explanation.push(`no root of ${name} cached yet`);
  else explanation.push(`the newest cached root of ${name} differs: ${seen.changed.join('; ')}`);

  const logFile = join(cache.root, 'logs', `${name}.log`);
  const build = (rebuild: boolean) =>
    cache.build(
      name,
      key,
      async (dir) => {
        o.note(`bootstrapping ${plan.distro.name} on the host (mmdebstrap, natively; log: ${logFile})`);
        await withPackageCache(!packageCacheSkipped(spec, o.packageCache === false), o.note, (c) =>
          bootstrapInto(plan, dir, logFile, o.note, c?.proxyUrl('127.0.0.1')),
        );
      },
      KEEP_PER_RELEASE,
      { inputs, rebuild },
    );
  let built = await withSpaceCheck(cache.root, () => build(o.fresh === true));
  if (built.hit) {
    const damage = await verifyTarball(built.dir);
    if (damage) {
      const line = `the cached root ${basename(built.dir)} is damaged (${damage}); bootstrapping again`;
      o.note(line);
      explanation.push(line);
      built = await withSpaceCheck(cache.root, () => build(true));
    }
  }
  const installed = JSON.parse(readFileSync(join(built.dir, INSTALLED), 'utf8')) as Record<string, string>;
  return { tarball: join(built.dir, TARBALL), hit: built.hit, key, explanation, installed };
}

/**
 * The spec with its own keyring (--keyring) copied where apt can read it: apt checks signatures as the
 * _apt user, who cannot read a keyring in a private directory (a home directory, or vmstub's own
 * instance directories, are 0700) and then reports the key as missing. The copy is named by its
 * content, so a cached root is keyed by the key, not by where the user keeps it.
 */
function withAptReadableKeyring(spec: InstallSpec, cacheRoot: string): InstallSpec {
  if (!spec.keyring) return spec;
  const bytes = readFileSync(spec.keyring);
  const dir = join(cacheRoot, 'keyrings');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  const copy = join(dir, `${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.gpg`);
  if (!existsSync(copy)) writeFileSync(copy, bytes, { mode: 0o644 });
  return { ...spec, keyring: copy };
}

/** The newest cached root whose inputs match these but for the mirror state (the offline fallback). */
function newestWithRecipe(
  cache: StageCache,
  name: string,
  inputs: StageInputs,
): { snapshot: Record<string, string>; when: string } | undefined {
  const dir = cache.newest(name);
  const before = dir ? cache.inputsOf(dir) : undefined;
  if (!dir || !before) return undefined;
  const { snapshot, ...rest } = before;
  const { snapshot: _, ...wanted } = inputs;
  if (JSON.stringify(rest) !== JSON.stringify(wanted)) return undefined;
  return {
    snapshot: snapshot as Record<string, string>,
    when: statSync(join(dir, TARBALL))
      .mtime.toISOString()
      .replace(/\.\d+Z$/, 'Z'),
  };
}

async function toolVersion(): Promise<string> {
  const r = await run(requireTool('mmdebstrap', 'mmdebstrap'), ['--version']);
  return r.stdout.toString('utf8').trim();
}

/** Runs the bootstrap steps into dir/root, strips the machine's identity, and packs it as dir/root.tar. */
async function bootstrapInto(
  plan: Plan,
  dir: string,
  logFile: string,
  note: (l: string) => void,
  downloadProxy: string | undefined,
) {
  const root = join(dir, 'root');
  mkdirSync(root);
  mkdirSync(join(logFile, '..'), { recursive: true });
  let phase = '';
  try {
    await executePlan(plan, {
      target: root,
      staging: join(dir, 'staging'),
      hooks: join(dir, 'hooks'),
      logFile,
      downloadProxy,
      emit: (e) => {
        if (e.type === 'progress' && e.phase !== phase && !e.done)
          note(`host bootstrap: ${(phase = e.phase)}`);
      },
    });
  } catch (e) {
    const reason = e instanceof InstallFailure ? e.reason : (e as Error).message;
    throw new VmstubError(`the bootstrap on the host failed: ${reason} (log: ${logFile})`);
  }
  stripIdentity(root);
  writeFileSync(join(dir, INSTALLED), JSON.stringify(dpkgInstalled(root), null, 2) + '\n');
  const tar = await run(requireTool('tar', 'tar'), [
    '--create',
    `--file=${join(dir, TARBALL)}`,
    '--numeric-owner',
    '--xattrs',
    '--xattrs-include=*',
    '--acls',
    '--sort=name',
    '-C',
    root,
    '.',
  ]);
  if (tar.code !== 0) throw new VmstubError(`cannot pack the bootstrapped root: ${tar.stderr.trim()}`);
  writeFileSync(join(dir, CHECKSUM), `${await fileSha256(join(dir, TARBALL))}\n`);
  await removeTree(root);
  for (const d of ['staging', 'hooks']) rmSync(join(dir, d), { recursive: true, force: true });
}

/** What is wrong with a cached root's tar stream (truncated, a byte changed), or undefined. */
export async function verifyTarball(dir: string): Promise<string | undefined> {
  const tarball = join(dir, TARBALL);
  if (!existsSync(tarball)) return 'its tar stream is missing';
  const want = existsSync(join(dir, CHECKSUM)) ? readFileSync(join(dir, CHECKSUM), 'utf8').trim() : '';
  if (!want) return 'it has no checksum';
  const got = await fileSha256(tarball);
  return got === want ? undefined : `sha256 ${got.slice(0, 12)}..., made as ${want.slice(0, 12)}...`;
}

/** A bootstrap that fails on a (nearly) full disk says so, naming the directory, instead of a tool's last line. */
async function withSpaceCheck<T>(dir: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    const free = freeBytes(dir);
    if (free !== undefined && free < LOW_SPACE_BYTES)
      throw new VmstubError(
        `the disk of ${dir} is full (${Math.round(free / 2 ** 20)} MiB free): a root filesystem needs about 1 GiB while it is made; free some space or set VMSTUB_CACHE`,
      );
    throw e;
  }
}

function freeBytes(dir: string): number | undefined {
  for (let d = dir; ; d = join(d, '..')) {
    try {
      const st = statfsSync(d);
      return st.bavail * st.bsize;
    } catch {
      if (d === '/') return undefined;
    }
  }
}

/** Removes NOT_CACHED from a root; returns what was there. */
export function stripIdentity(root: string): string[] {
  const removed: string[] = [];
  for (const path of NOT_CACHED) {
    const file = join(root, path);
    if (!existsSync(file) && !isSymlink(file)) continue;
    rmSync(file, { force: true });
    removed.push(path);
  }
  return removed;
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** name -> version of every package dpkg has installed in a root. */
export function dpkgInstalled(root: string): Record<string, string> {
  return parseDpkgStatus(readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8'));
}

export function parseDpkgStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (f: string) => new RegExp(`^${f}: (.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const name = field('Package');
    const version = field('Version');
    if (name && version && field('Status') === 'install ok installed') out[name] = version;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
