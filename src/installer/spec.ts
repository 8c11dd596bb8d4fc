import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CATALOG } from '../catalog/index.js';
import type { Arch } from '../vm/definition.js';
import { usageError } from '../util/errors.js';

import type { Filesystem } from '../catalog/types.js';

export type { Filesystem };
export type BootstrapTool = 'mmdebstrap' | 'debootstrap';

export interface UserSpec {
  name: string;
  sshKeys: string[];
  sudo: boolean;
  /** A crypt(3) hash; without one the account has no password (SSH keys only). */
  passwordHash?: string;
}

/** Everything an install needs to know, fully resolved: what the stub receives through fw_cfg. */
export interface InstallSpec {
  distro: string;
  arch: Arch;
  hostname: string;
  filesystem: Filesystem;
  /** The data disk, a share tagged fs (no mkfs then), or a directory (vmstub install --target-dir, as root). */
  target: 'disk' | 'share' | 'directory';
  /** Format a disk that already holds a filesystem or partition table. */
  wipe: boolean;
  /** Set by vmstub resume only: start over on the disk an unfinished install of this instance left. */
  resume: boolean;
  mirror?: string;
  securityMirror?: string;
  proxy?: string;
  /** A keyring (path in the stub) for a private or fixture mirror, instead of the distribution's. */
  keyring?: string;
  timezone: string;
  locale: string;
  keyboard?: string;
  bootstrap: BootstrapTool;
  root: { passwordHash?: string; sshKeys: string[] };
  users: UserSpec[];
  packages: string[];
  postInstall: string[];
}

/** What a user writes: every field optional but distro; defaults fill the rest. */
export type SpecInput = Partial<Omit<InstallSpec, 'root' | 'users'>> & {
  root?: { passwordHash?: string; sshKeys?: string[] };
  users?: Partial<UserSpec>[];
};

export interface SpecDefaults {
  hostname: string;
  timezone: string;
  sshKeys: string[];
  arch: Arch;
}

const HOSTNAME_RE = /^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const TIMEZONE_RE = /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/;
const LOCALE_RE = /^[A-Za-z]{1,3}(_[A-Za-z]{2})?\.(UTF-8|utf8)(@[a-z]+)?$|^C\.UTF-8$|^C$|^POSIX$/;
const HASH_RE = /^\$(1|5|6|y|2[aby]|7|gy)\$[^:\s]+$/;
const KEY_RE =
  /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/=]+( .*)?$/;

const KNOWN_FIELDS = new Set([
  'distro',
  'arch',
  'hostname',
  'filesystem',
  'target',
  'wipe',
  'resume',
  'mirror',
  'securityMirror',
  'proxy',
  'keyring',
  'timezone',
  'locale',
  'keyboard',
  'bootstrap',
  'root',
  'users',
  'packages',
  'postInstall',
]);

/** One field's problem; resolveSpec collects them all before it reports. */
class FieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function fail(field: string, message: string): never {
  throw new FieldError(field, message);
}

function strings(field: string, v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(field, 'must be a list of strings');
  return v as string[];
}

function sshKeys(field: string, v: unknown): string[] {
  const keys = strings(field, v).map((k) => k.trim());
  keys.forEach((k, i) => {
    if (!KEY_RE.test(k)) fail(`${field}[${i}]`, `is not an SSH public key ("${k.slice(0, 30)}...")`);
  });
  return keys;
}

function url(field: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^(https?|file):\/\/\S+$/.test(v))
    fail(field, `'${String(v)}' is not an http(s) or file URL`);
  try {
    new URL(v);
  } catch {
    fail(field, `'${v}' is not a valid URL`);
  }
  return v.replace(/\/+$/, '');
}

function oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T))
    fail(field, `'${String(v)}' is not one of ${allowed.join(', ')}`);
  return v as T;
}

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
 * checked; all problems are reported at once, in one line naming the file and each field.
 */
export function resolveSpec(input: SpecInput, defaults: SpecDefaults, where = 'spec'): InstallSpec {
  const problems: FieldError[] = [];
  const check = <T>(fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof FieldError)) throw e;
      problems.push(e);
      return fallback;
    }
  };

  for (const key of Object.keys(input)) {
    if (!KNOWN_FIELDS.has(key)) problems.push(new FieldError('', `unknown field '${key}'`));
  }
  const distro = check(() => {
    if (!input.distro) fail('', 'distro is required (vmstub distros lists them)');
    const d = CATALOG.find((c) => c.id === input.distro);
    if (!d) fail('distro', `unknown distribution '${input.distro}' (vmstub distros lists them)`);
    if (!d.installable) fail('distro', `${d.name} is not installable by this version of vmstub yet`);
    return d;
  }, undefined);
  const arch = check(() => {
    const a = oneOf('arch', input.arch, ['x86_64', 'aarch64', 'riscv64'] as const, defaults.arch);
    if (distro && !distro.arches.includes(a))
      fail('arch', `${distro.name} is not available for ${a} (${distro.arches.join(', ')})`);
    return a;
  }, defaults.arch);

  const hostname = input.hostname ?? defaults.hostname;
  check(() => {
    if (typeof hostname !== 'string' || !HOSTNAME_RE.test(hostname))
      fail('hostname', `'${String(hostname)}' is not a valid host name`);
  }, undefined);
  const timezone = input.timezone ?? defaults.timezone;
  check(() => {
    if (typeof timezone !== 'string' || !TIMEZONE_RE.test(timezone))
      fail('timezone', `'${String(timezone)}' is not a time zone name like Europe/Berlin`);
    if (!knownTimezone(timezone))
      fail('timezone', `'${timezone}' is not in the time zone database (e.g. Europe/Berlin, UTC)`);
  }, undefined);
  const locale = input.locale ?? 'C.UTF-8';
  check(() => {
    if (typeof locale !== 'string' || !LOCALE_RE.test(locale))
      fail('locale', `'${String(locale)}' is not a locale like en_US.UTF-8`);
    if (!knownLocale(locale)) fail('locale', `'${locale}' is not a locale glibc supports (e.g. en_US.UTF-8)`);
  }, undefined);
  check(() => {
    if (
      input.keyboard !== undefined &&
      (typeof input.keyboard !== 'string' || !/^[a-z]{2,8}$/.test(input.keyboard))
    )
      fail('keyboard', `'${String(input.keyboard)}' is not a keyboard layout like us or de`);
  }, undefined);
  const hash = (field: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !HASH_RE.test(v))
      fail(
        field,
        'must be a crypt(3) hash such as $6$..., $y$... (mkpasswd makes one); plain passwords are refused',
      );
    return v;
  };

  const users = check(() => {
    if (input.users !== undefined && !Array.isArray(input.users)) fail('users', 'must be a list');
    return input.users ?? [];
  }, []).flatMap((u, i): UserSpec[] => {
    const w = `users[${i}]`;
    return check(() => {
      if (!u || typeof u !== 'object') fail(w, 'must be a mapping');
      if (typeof u.name !== 'string' || !USER_RE.test(u.name))
        fail(`${w}.name`, `'${String(u.name)}' is not a valid user name`);
      if (u.name === 'root') fail(`${w}.name`, "root is configured under 'root:'");
      return [
        {
          name: u.name,
          sshKeys: check(() => sshKeys(`${w}.sshKeys`, u.sshKeys), []),
          sudo: u.sudo === true,
          passwordHash: check(() => hash(`${w}.passwordHash`, u.passwordHash), undefined),
        },
      ];
    }, []);
  });
  const names = new Set<string>();
  for (const u of users) {
    if (names.has(u.name)) problems.push(new FieldError('users', `'${u.name}' is listed twice`));
    names.add(u.name);
  }

  const rootKeys = check(
    () =>
      input.root?.sshKeys !== undefined ? sshKeys('root.sshKeys', input.root.sshKeys) : defaults.sshKeys,
    defaults.sshKeys,
  );
  check(() => {
    if (typeof input.wipe !== 'undefined' && typeof input.wipe !== 'boolean')
      fail('wipe', 'must be true or false');
  }, undefined);
  const packages = check(() => strings('packages', input.packages), []);
  packages.forEach((p, i) =>
    check(() => {
      if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) fail(`packages[${i}]`, `'${p}' is not a package name`);
    }, undefined),
  );
  const filesystem = check(() => {
    const fs = oneOf('filesystem', input.filesystem, ['xfs', 'btrfs', 'ext4'] as const, 'xfs');
    if (distro && !distro.filesystems.includes(fs))
      fail('filesystem', `${distro.name}'s kernel cannot boot from ${fs} (${distro.filesystems.join(', ')})`);
    return fs;
  }, 'xfs' as const);

  const spec: InstallSpec = {
    distro: distro?.id ?? '',
    arch,
    hostname,
    filesystem,
    target: check(
      () => oneOf('target', input.target, ['disk', 'share', 'directory'] as const, 'disk'),
      'disk',
    ),
    wipe: input.wipe === true,
    resume: input.resume === true,
    mirror: check(() => url('mirror', input.mirror), undefined),
    securityMirror: check(() => url('securityMirror', input.securityMirror), undefined),
    proxy: check(() => url('proxy', input.proxy), undefined),
    keyring: input.keyring,
    timezone,
    locale,
    keyboard: input.keyboard,
    bootstrap: check(
      () => oneOf('bootstrap', input.bootstrap, ['mmdebstrap', 'debootstrap'] as const, 'mmdebstrap'),
      'mmdebstrap',
    ),
    root: {
      passwordHash: check(() => hash('root.passwordHash', input.root?.passwordHash), undefined),
      sshKeys: rootKeys,
    },
    users,
    packages,
    postInstall: check(() => strings('postInstall', input.postInstall), []),
  };
  if (problems.length) {
    const text = problems.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message));
    throw usageError(
      problems.length === 1
        ? `${where}: ${text[0]}`
        : `${where}: ${problems.length} problems: ${text.join('; ')}`,
    );
  }
  return spec;
}

/** A spec file: YAML (JSON is YAML too). One clear line for a file that cannot be read or parsed. */
export function readSpecFile(path: string): SpecInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (e) {
    throw usageError(`${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw usageError(`${path} must be a mapping (distro: debian12, ...)`);
  if ('resume' in value) throw usageError(`${path}: resume: is vmstub resume's to set, not a file's`);
  return value as SpecInput;
}
