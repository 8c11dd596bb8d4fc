import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CATALOG } from '../catalog/index.js';
import {
  formatProblems as formatConfigProblems,
  issueProblems,
  readYamlMapping,
  type ConfigSource,
  type Path,
  type Problem,
} from '../config/problems.js';
import type { Filesystem } from '../catalog/types.js';
import type { Arch } from '../util/arch.js';
import { usageError } from '../util/errors.js';
import { parseCpuCount, parseMemoryMiB, parseSize } from '../util/size.js';
import type { HostFwd } from '../vm/definition.js';
import { parseHostFwd } from '../vm/network.js';
import {
  allFields,
  fieldDecl,
  specFileSchema,
  type BOOTSTRAPS,
  type UNLOCK_MODES,
  type ResolvedFields,
  type SpecField,
  type SpecInput,
  type SystemField,
} from './spec-fields.js';
import { DEFAULT_SHELL, HOSTNAME_RE, LOCALE_RE, TIMEZONE_RE } from '../config/fields.js';

export type { Filesystem, SpecInput };
export type BootstrapTool = (typeof BOOTSTRAPS)[number];

export interface UserSpec {
  name: string;
  sshKeys: string[];
  sudo: boolean;
  /** A crypt(3) hash; without one the account has no password (SSH keys only). */
  passwordHash?: string;
  /** Supplementary groups besides the sudo group; made when the system lacks them. */
  groups: string[];
  shell: string;
}

/**
 * Everything an install needs to know, fully resolved: what the stub receives through fw_cfg. Its
 * fields, their types and which are always present come from SPEC_FIELDS.
 */
export type InstallSpec = ResolvedFields & {
  root: { passwordHash?: string; sshKeys: string[] };
  users: UserSpec[];
};

/** The VM a spec file describes besides the system: what vmstub create makes (the stub never sees it). */
export interface MachineSpec {
  diskBytes: number;
  memoryMiB: number;
  cpus: number;
  hostfwds: HostFwd[];
  autoForward: boolean;
  /** DIR[:TAG] as written; relative directories are relative to `baseDir`. */
  shares: string[];
  baseDir: string;
  /** How an encrypted root is opened at each boot. */
  unlock: (typeof UNLOCK_MODES)[number];
  /** The passphrase's file, resolved against baseDir; none: asked at the terminal. */
  keyFile?: string;
}

export interface SpecDefaults {
  hostname: string;
  timezone: string;
  sshKeys: string[];
  arch: Arch;
}

/** Where a spec came from, for messages: a file (with the line of each field) and which fields flags set. */
export type SpecSource = ConfigSource;

const ZONEINFO = '/usr/share/zoneinfo';

/** A time zone the zone database knows: the host's tzdata where it has one, or ICU's copy of it. */
export function knownTimezone(zone: string, zoneinfo = ZONEINFO): boolean {
  if (!TIMEZONE_RE.test(zone) || zone.split('/').includes('..')) return false;
  const file = join(zoneinfo, zone);
  try {
    if (statSync(file).isFile() && readFileSync(file).subarray(0, 4).toString('latin1') === 'TZif')
      return true;
  } catch {
    // not in the host's tzdata (or it has none): ask ICU
  }
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const SUPPORTED_LOCALES = '/usr/share/i18n/SUPPORTED';

/**
 * A UTF-8 locale glibc can generate: checked against glibc's list of supported locales where the host
 * has it (the locales package), else language and territory against ICU's lists of known codes.
 */
export function knownLocale(locale: string, supportedFile = SUPPORTED_LOCALES): boolean {
  if (!LOCALE_RE.test(locale)) return false;
  const normal = locale.replace(/\.utf8/i, '.UTF-8');
  if (/^(C|POSIX|C\.UTF-8)$/.test(normal)) return true;
  if (existsSync(supportedFile))
    return readFileSync(supportedFile, 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[0] === normal);
  const [, lang, region] = /^([A-Za-z]{2,3})(?:_([A-Za-z]{2}))?\./.exec(locale) ?? [];
  const names = (type: 'language' | 'region', code: string) =>
    new Intl.DisplayNames(['en'], { type, fallback: 'none' }).of(code) !== undefined;
  return lang !== undefined && names('language', lang) && (region === undefined || names('region', region));
}

/**
 * Validates a spec (from a file, from flags, or both merged) and fills in the defaults. Every field is
 * checked; all problems are reported at once, in one line naming the file and each field (with its line
 * in the file, or the flag that set it).
 */
export function resolveSpec(
  input: SpecInput,
  defaults: SpecDefaults,
  source: string | SpecSource = 'spec',
): InstallSpec {
  return resolveSpecAndMachine(input, defaults, source).spec;
}

/** resolveSpec, and the machine fields (disk, memory, CPUs, forwards, shares) with their defaults. */
export function resolveSpecAndMachine(
  input: SpecInput,
  defaults: SpecDefaults,
  source: string | SpecSource = 'spec',
): { spec: InstallSpec; machine: MachineSpec } {
  const src: SpecSource = typeof source === 'string' ? { where: source } : source;
  const problems: Problem[] = [];
  if (!input || typeof input !== 'object' || Array.isArray(input))
    throw usageError(`${src.where}: must be a mapping (distro: debian12, ...)`);
  const parsed = specFileSchema.safeParse(input);
  if (!parsed.success) for (const issue of parsed.error.issues) problems.push(...issueProblems(issue, input));
  const bad = new Set(problems.map((p) => String(p.path[0])));
  const ok = (k: SpecField) => !bad.has(k);
  const problem = (path: Path, message: string) => problems.push({ path, message });

  const distro = input.distro === undefined ? undefined : CATALOG.find((c) => c.id === input.distro);
  if (input.distro === undefined) problem([], 'distro is required (vmstub distros lists them)');
  else if (ok('distro') && !distro)
    problem(['distro'], `unknown distribution '${input.distro}' (vmstub distros lists them)`);
  else if (distro && !distro.installable)
    problem(['distro'], `${distro.name} is not installable by this version of vmstub yet`);
  const arch = (ok('arch') ? input.arch : undefined) ?? defaults.arch;
  if (distro && !distro.arches.includes(arch))
    problem(['arch'], `${distro.name} is not available for ${arch} (${distro.arches.join(', ')})`);
  const filesystem =
    (ok('filesystem') ? input.filesystem : undefined) ?? (fieldDecl('filesystem').value as Filesystem);
  if (distro && ok('filesystem') && !distro.filesystems.includes(filesystem))
    problem(
      ['filesystem'],
      `${distro.name}'s kernel cannot boot from ${filesystem} (${distro.filesystems.join(', ')})`,
    );
  if (distro && ok('encrypt') && input.encrypt && distro.family !== 'deb')
    problem(
      ['encrypt'],
      `${distro.name}'s initramfs (${distro.family === 'gentoo' ? "Gentoo's" : 'dracut'}) is not set up by vmstub to unlock an encrypted root yet; Debian and Ubuntu are`,
    );
  if (!input.encrypt)
    for (const k of ['keyFile', 'unlock'] as const)
      if (input[k] !== undefined) problem([k], 'is for an encrypted root (encrypt: true, --encrypt)');
  if (ok('encrypt') && input.encrypt && (input.target ?? 'disk') !== 'disk')
    problem(['encrypt'], 'only a root on the data disk can be encrypted');
  const hostname = input.hostname ?? defaults.hostname;
  if (input.hostname === undefined && !HOSTNAME_RE.test(hostname))
    problem(['hostname'], `'${hostname}' is not a valid host name`);
  const timezone = input.timezone ?? defaults.timezone;
  if (ok('timezone') && !knownTimezone(timezone))
    problem(['timezone'], `'${timezone}' is not in the time zone database (e.g. Europe/Berlin, UTC)`);
  const locale = input.locale ?? (fieldDecl('locale').value as string);
  if (ok('locale') && !knownLocale(locale))
    problem(['locale'], `'${locale}' is not a locale glibc supports (e.g. en_US.UTF-8)`);

  if (distro && 'init' in distro && distro.init === 'upstart')
    for (const k of ['firstBoot', 'everyBoot'] as const)
      if (input[k]?.length)
        problem(
          [k],
          `${distro.name} boots with upstart: vmstub runs boot commands through systemd units only`,
        );
  if (distro && distro.family !== 'gentoo' && ok('packages'))
    (input.packages ?? []).forEach((name, i) => {
      if (name.includes('/'))
        problem(
          ['packages', i],
          `'${name}': category/name is Gentoo's form; ${distro.name} takes the package's name`,
        );
    });
  (Array.isArray(input.files) ? input.files : []).forEach((f, i) => {
    if (f?.encoding === 'base64' && typeof f.content === 'string' && !/^[A-Za-z0-9+/=\s]*$/.test(f.content))
      problem(['files', i, 'content'], 'is not base64');
  });

  const rootKeys = (input.root?.sshKeys ?? defaults.sshKeys).map((k) => k.trim());
  const users: UserSpec[] = ok('users')
    ? (input.users ?? []).map((u) => ({
        name: u.name,
        sshKeys: (u.sshKeys ?? []).map((k) => k.trim()),
        sudo: u.sudo === true,
        passwordHash: u.passwordHash,
        groups: u.groups ?? [],
        shell: u.shell ?? DEFAULT_SHELL,
      }))
    : [];
  const names = new Set<string>();
  users.forEach((u, i) => {
    if (u.name === 'root') problem(['users', i, 'name'], "root is configured under 'root:'");
    else if (names.has(u.name)) problem(['users'], `'${u.name}' is listed twice`);
    names.add(u.name);
  });

  if (problems.length || !parsed.success)
    throw usageError(
      formatConfigProblems(problems, { flagOf: flagOf as (f: string) => string | undefined, ...src }),
    );
  const data = parsed.data as Record<string, unknown>;
  const given = (k: SpecField) => data[k] ?? structuredClone(fieldDecl(k).value);
  // Every system field from the table: what was given, else what the host or the name gives, else the table's.
  const fromHost: Partial<Record<SystemField, unknown>> = defaults;
  const system: Record<string, unknown> = {};
  for (const k of systemFields) system[k] = data[k] ?? fromHost[k] ?? structuredClone(fieldDecl(k).value);
  const spec = {
    ...system,
    distro: distro!.id,
    root: { passwordHash: input.root?.passwordHash, sshKeys: rootKeys },
    users,
  } as InstallSpec;
  const memory = given('memory') as number | string;
  const machine: MachineSpec = {
    diskBytes: parseSize(given('disk') as string, ''),
    memoryMiB: typeof memory === 'number' ? memory : parseMemoryMiB(memory, ''),
    cpus: parseCpuCount(given('cpus') as number | string, ''),
    hostfwds: ((given('forwards') as string[] | undefined) ?? []).map((f) => parseHostFwd(f)),
    autoForward: given('autoForward') as boolean,
    shares: (given('shares') as string[] | undefined) ?? [],
    baseDir: src.baseDir ?? process.cwd(),
    unlock: given('unlock') as MachineSpec['unlock'],
    ...(data.keyFile ? { keyFile: resolve(src.baseDir ?? process.cwd(), data.keyFile as string) } : {}),
  };
  return { spec, machine };
}

/**
 * A spec vmstub recorded for an instance (resume and clone read it back): fields a newer vmstub added
 * since get the table's values, so an older record means what it meant.
 */
export function readRecordedSpec(file: string): InstallSpec {
  const spec = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  for (const k of systemFields)
    if (spec[k] === undefined && fieldDecl(k).value !== undefined)
      spec[k] = structuredClone(fieldDecl(k).value);
  return spec as InstallSpec;
}

/** The fields the stub receives, in the table's order (root and users are resolved on their own). */
const systemFields = allFields.filter(
  (k): k is Exclude<SystemField, 'root' | 'users'> => !fieldDecl(k).machine && k !== 'root' && k !== 'users',
);

const flagOf = (k: SpecField): string | undefined =>
  fieldDecl(k)
    .flags?.[0]?.flags.replace(/^-\w, /, '')
    .split(' ')[0];

export interface SpecFile {
  input: SpecInput;
  source: SpecSource;
}

/**
 * A spec file: YAML (JSON is YAML too). One clear line for a file that cannot be read or parsed; the
 * lines of its fields are kept, so problems found later name them.
 */
export function readSpecFile(path: string): SpecFile {
  const { value, lineOf } = readYamlMapping(path, 'distro: debian12');
  for (const k of allFields)
    if (fieldDecl(k).internal && k in value)
      throw usageError(`${path}: ${k}: is vmstub's to set, not a file's`);
  return { input: value as SpecInput, source: { where: path, lineOf, baseDir: dirname(path) } };
}
