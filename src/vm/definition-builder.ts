import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { usageError } from '../util/errors.js';
import { parseArch } from '../util/arch.js';
import { parseCpuCount, parseMemoryMiB, parseSize } from '../util/size.js';
import { detectDiskFormat } from './allocate.js';
import {
  normaliseFwCfgName,
  validateName,
  type Accel,
  type DiskSpec,
  type FwCfgItem,
  type Handoff,
  type NetSpec,
  type ShareSpec,
  type VmDefinition,
} from './definition.js';
import { parseHostFwd, parseNet } from './network.js';

/**
 * `run`'s options as the command line gives them (named as its flags: --share is `share`), before
 * validation; the CLI passes its parsed options as they are.
 */
export interface RunOptions {
  name?: string;
  system?: string;
  kernel?: string;
  initrd?: string;
  iso?: string;
  bootDisk?: string;
  arch?: string;
  memory?: string;
  /** As typed (`--cpus 4`), or a number. */
  cpus?: string | number;
  data?: string;
  volatileData?: string;
  share?: string[];
  hostfwd?: string[];
  autoForward?: boolean;
  net?: string[];
  append?: string[];
  fwCfg?: string[];
  hvc?: boolean;
  uefi?: boolean;
  accel?: string;
  handoff?: Handoff;
  sshUser?: string;
  stopTimeout?: number;
  /** Remove the instance when it stops. */
  rm?: boolean;
}

export const DEFAULTS = { memoryMiB: 2048, cpus: 2, sshUser: 'root', stopTimeoutSec: 60 } as const;

/** A definition with vmstub's defaults; `run` and `create` (and tests) give only what differs. */
export function newDefinition(
  name: string,
  o: Partial<Omit<VmDefinition, 'version' | 'name'>> = {},
  now = new Date(),
): VmDefinition {
  return {
    version: 1,
    name,
    memoryMiB: DEFAULTS.memoryMiB,
    cpus: DEFAULTS.cpus,
    shares: [],
    nets: [{ kind: 'user' }],
    hostfwds: [],
    append: [],
    fwCfg: [],
    hvc: false,
    uefi: false,
    accel: 'auto',
    sshUser: DEFAULTS.sshUser,
    stopTimeoutSec: DEFAULTS.stopTimeoutSec,
    ephemeral: false,
    createdAt: now.toISOString(),
    ...o,
  };
}

const TAG_RE = /^[A-Za-z0-9_-]{1,31}$/;

/** `DIR` or `DIR:TAG`; the first share's tag defaults to `fs`, as the stub and the original expect. */
export function parseShare(text: string, cwd: string): ShareSpec {
  const colon = text.lastIndexOf(':');
  const hasTag = colon > 0 && TAG_RE.test(text.slice(colon + 1));
  const dir = hasTag ? text.slice(0, colon) : text;
  if (!hasTag && colon > 0 && !existsSync(text))
    throw usageError(
      `--share '${text}': tag '${text.slice(colon + 1)}' must be 1-31 letters, digits, '_' or '-'`,
    );
  const path = resolve(cwd, dir);
  if (!existsSync(path) || !statSync(path).isDirectory())
    throw usageError(`--share: directory ${path} not found`);
  return { path, tag: hasTag ? text.slice(colon + 1) : 'fs' };
}

/** `NAME=@FILE` or `NAME=STRING`. */
export function parseFwCfg(text: string, cwd: string): FwCfgItem {
  const eq = text.indexOf('=');
  if (eq < 0) throw usageError(`--fw-cfg '${text}' is not NAME=@FILE or NAME=STRING`);
  const name = normaliseFwCfgName(text.slice(0, eq));
  const value = text.slice(eq + 1);
  if (value.startsWith('@')) {
    const file = resolve(cwd, value.slice(1));
    if (!existsSync(file)) throw usageError(`--fw-cfg ${name}: file ${file} not found`);
    return { name, file };
  }
  return { name, string: value };
}

function parseAccel(text: string | undefined): Accel {
  if (text === undefined) return 'auto';
  if (text === 'auto' || text === 'kvm' || text === 'tcg') return text;
  throw usageError(`--accel '${text}' is not auto, kvm or tcg`);
}

function defaultName(system: string | undefined, kernel: string | undefined): string {
  const base = basename(system ?? kernel ?? 'vm')
    .replace(/\.(squashfs|sqfs|img|iso)$/, '')
    .replace(/[^a-zA-Z0-9._-]/g, '-')
    .replace(/^[^a-zA-Z0-9]+/, '')
    .slice(0, 30);
  return `${base || 'vm'}-${randomBytes(2).toString('hex')}`;
}

/** Validates `run`'s options into a definition; every problem is one usage error, before anything is created. */
export function buildDefinition(o: RunOptions, cwd: string, now = new Date()): VmDefinition {
  const boots = [
    o.system && 'a SYSTEM image',
    o.kernel && '--kernel',
    o.iso && '--iso',
    o.bootDisk && '--boot-disk',
  ].filter(Boolean);
  const choices = 'a SYSTEM image, --kernel, --iso or --boot-disk';
  if (!boots.length) throw usageError(`run: give ${choices} (see vmstub run --help)`);
  if (o.initrd && !o.kernel) throw usageError('--initrd needs --kernel');
  if (boots.length > 1) throw usageError(`give one of ${choices}, not ${boots.join(' and ')}`);
  if (o.data && o.volatileData)
    throw usageError('--data and --volatile-data both give the data disk; choose one');
  const abs = (p: string | undefined) => (p === undefined ? undefined : resolve(cwd, p));
  const system = abs(o.system);
  const kernel = abs(o.kernel);
  const initrd = abs(o.initrd);
  const iso = abs(o.iso);
  const bootDiskPath = abs(o.bootDisk);
  for (const [what, p] of [
    ['system image', system],
    ['kernel', kernel],
    ['initrd', initrd],
    ['ISO', iso],
    ['boot disk', bootDiskPath],
  ] as const) {
    if (p !== undefined && !existsSync(p)) throw usageError(`${what} ${p} not found`);
  }
  let data: VmDefinition['data'];
  if (o.data) {
    const path = resolve(cwd, o.data);
    if (!existsSync(path))
      throw usageError(`data disk ${path} not found (create it with: vmstub allocate ${o.data} 8G)`);
    data = { path, format: statSync(path).isFile() ? detectDiskFormat(path) : 'raw' };
  }
  const shares = (o.share ?? []).map((s) => parseShare(s, cwd));
  const tags = new Set<string>();
  for (const s of shares) {
    if (tags.has(s.tag))
      throw usageError(`--share: tag '${s.tag}' used twice; give each share its own DIR:TAG`);
    tags.add(s.tag);
  }
  const nets: NetSpec[] = o.net?.length ? o.net.map(parseNet) : [{ kind: 'user' }];
  const hostfwds = (o.hostfwd ?? []).map((f) => parseHostFwd(f));
  if (hostfwds.length && !nets.some((n) => n.kind === 'user'))
    throw usageError('--hostfwd needs a user-mode network (--net user)');
  if (o.autoForward && !nets.some((n) => n.kind === 'user'))
    throw usageError('--auto-forward needs a user-mode network (--net user)');
  const bootDisk: DiskSpec | undefined = bootDiskPath
    ? { path: bootDiskPath, format: detectDiskFormat(bootDiskPath) }
    : undefined;
  if (o.arch && !iso && !bootDiskPath)
    throw usageError('--arch is for --iso and --boot-disk; a system image or a kernel says its own');
  const name = validateName(o.name ?? defaultName(system ?? iso ?? bootDiskPath, kernel));
  const cpus = o.cpus === undefined ? DEFAULTS.cpus : parseCpuCount(o.cpus, '--cpus');
  return newDefinition(
    name,
    {
      system,
      kernel,
      initrd,
      iso,
      bootDisk,
      arch: o.arch ? parseArch(o.arch) : undefined,
      memoryMiB: o.memory ? parseMemoryMiB(o.memory) : DEFAULTS.memoryMiB,
      cpus,
      data,
      volatileDataBytes: o.volatileData ? parseSize(o.volatileData, '--volatile-data') : undefined,
      shares,
      nets,
      hostfwds,
      ...(o.autoForward ? { autoForward: true } : {}),
      append: (o.append ?? []).map((a) => a.trim()).filter(Boolean),
      fwCfg: (o.fwCfg ?? []).map((f) => parseFwCfg(f, cwd)),
      hvc: o.hvc === true,
      uefi: o.uefi === true,
      accel: parseAccel(o.accel),
      handoff: o.handoff,
      sshUser: o.sshUser ?? DEFAULTS.sshUser,
      stopTimeoutSec: o.stopTimeout ?? DEFAULTS.stopTimeoutSec,
      ephemeral: o.rm === true,
    },
    now,
  );
}
