import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { CATALOG } from '../catalog/index.js';
import type { Arch } from '../vm/definition.js';
import { usageError } from '../util/errors.js';

export type Filesystem = 'xfs' | 'btrfs' | 'ext4';
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

function fail(where: string, message: string): never {
  throw usageError(`${where}: ${message}`);
}

function strings(where: string, v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(where, 'must be a list of strings');
  return v as string[];
}

function sshKeys(where: string, v: unknown): string[] {
  const keys = strings(where, v).map((k) => k.trim());
  keys.forEach((k, i) => {
    if (!KEY_RE.test(k)) fail(`${where}[${i}]`, `is not an SSH public key ("${k.slice(0, 30)}...")`);
  });
  return keys;
}

function url(where: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^(https?|file):\/\/\S+$/.test(v))
    fail(where, `'${String(v)}' is not an http(s) or file URL`);
  return v.replace(/\/+$/, '');
}

function oneOf<T extends string>(where: string, v: unknown, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !allowed.includes(v as T))
    fail(where, `'${String(v)}' is not one of ${allowed.join(', ')}`);
  return v as T;
}

/** Validates a spec (from a file, from flags, or both merged) and fills in the defaults. */
export function resolveSpec(input: SpecInput, defaults: SpecDefaults, where = 'spec'): InstallSpec {
  for (const key of Object.keys(input)) {
    if (!KNOWN_FIELDS.has(key)) fail(where, `unknown field '${key}'`);
  }
  if (!input.distro) fail(where, 'distro is required (vmstub distros lists them)');
  const distro = CATALOG.find((d) => d.id === input.distro);
  if (!distro) fail(`${where}: distro`, `unknown distribution '${input.distro}' (vmstub distros lists them)`);
  if (!distro.installable)
    fail(`${where}: distro`, `${distro.name} is not installable by this version of vmstub yet`);
  const arch = oneOf(`${where}: arch`, input.arch, ['x86_64', 'aarch64', 'riscv64'] as const, defaults.arch);
  if (!distro.arches.includes(arch))
    fail(`${where}: arch`, `${distro.name} is not available for ${arch} (${distro.arches.join(', ')})`);

  const hostname = input.hostname ?? defaults.hostname;
  if (typeof hostname !== 'string' || !HOSTNAME_RE.test(hostname))
    fail(`${where}: hostname`, `'${String(hostname)}' is not a valid host name`);
  const timezone = input.timezone ?? defaults.timezone;
  if (typeof timezone !== 'string' || !TIMEZONE_RE.test(timezone))
    fail(`${where}: timezone`, `'${String(timezone)}' is not a time zone name like Europe/Berlin`);
  const locale = input.locale ?? 'C.UTF-8';
  if (typeof locale !== 'string' || !LOCALE_RE.test(locale))
    fail(`${where}: locale`, `'${String(locale)}' is not a locale like en_US.UTF-8`);
  if (
    input.keyboard !== undefined &&
    (typeof input.keyboard !== 'string' || !/^[a-z]{2,8}$/.test(input.keyboard))
  ) {
    fail(`${where}: keyboard`, `'${String(input.keyboard)}' is not a keyboard layout like us or de`);
  }
  const hash = (w: string, v: unknown): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !HASH_RE.test(v))
      fail(
        w,
        'must be a crypt(3) hash such as $6$..., $y$... (mkpasswd makes one); plain passwords are refused',
      );
    return v;
  };

  const users = (input.users ?? []).map((u, i): UserSpec => {
    const w = `${where}: users[${i}]`;
    if (!u || typeof u !== 'object') fail(w, 'must be a mapping');
    if (typeof u.name !== 'string' || !USER_RE.test(u.name))
      fail(`${w}.name`, `'${String(u.name)}' is not a valid user name`);
    if (u.name === 'root') fail(`${w}.name`, "root is configured under 'root:'");
    return {
      name: u.name,
      sshKeys: sshKeys(`${w}.sshKeys`, u.sshKeys),
      sudo: u.sudo === true,
      passwordHash: hash(`${w}.passwordHash`, u.passwordHash),
    };
  });
  const names = new Set<string>();
  for (const u of users) {
    if (names.has(u.name)) fail(`${where}: users`, `'${u.name}' is listed twice`);
    names.add(u.name);
  }

  const rootKeys =
    input.root?.sshKeys !== undefined
      ? sshKeys(`${where}: root.sshKeys`, input.root.sshKeys)
      : defaults.sshKeys;
  if (typeof input.wipe !== 'undefined' && typeof input.wipe !== 'boolean')
    fail(`${where}: wipe`, 'must be true or false');
  const packages = strings(`${where}: packages`, input.packages);
  packages.forEach((p, i) => {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) fail(`${where}: packages[${i}]`, `'${p}' is not a package name`);
  });

  return {
    distro: distro.id,
    arch,
    hostname,
    filesystem: oneOf(`${where}: filesystem`, input.filesystem, ['xfs', 'btrfs', 'ext4'] as const, 'xfs'),
    target: oneOf(`${where}: target`, input.target, ['disk', 'share', 'directory'] as const, 'disk'),
    wipe: input.wipe === true,
    mirror: url(`${where}: mirror`, input.mirror),
    securityMirror: url(`${where}: securityMirror`, input.securityMirror),
    proxy: url(`${where}: proxy`, input.proxy),
    keyring: input.keyring,
    timezone,
    locale,
    keyboard: input.keyboard,
    bootstrap: oneOf(
      `${where}: bootstrap`,
      input.bootstrap,
      ['mmdebstrap', 'debootstrap'] as const,
      'mmdebstrap',
    ),
    root: { passwordHash: hash(`${where}: root.passwordHash`, input.root?.passwordHash), sshKeys: rootKeys },
    users,
    packages,
    postInstall: strings(`${where}: postInstall`, input.postInstall),
  };
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
  return value as SpecInput;
}
