/**
 * The image config (`vmstub image build FILE.yaml`), declared once: each field's schema, doc and
 * default. The file's validation, the JSON Schema editors use and the field table in docs/images.md
 * are made from this table.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import * as z from 'zod/mini';
import { CATALOG } from '../catalog/index.js';
import type { DebDistro, GentooDistro, RpmDistro } from '../catalog/types.js';
import {
  DEFAULT_SHELL,
  HOSTNAME_RE,
  hostname,
  matching,
  packageName,
  passwordHash,
  sshKey,
  url,
  user,
} from '../config/fields.js';
import {
  formatProblems,
  issueProblems,
  readYamlMapping,
  type ConfigSource,
  type Problem,
} from '../config/problems.js';
import { ARCHES, parseArch, type Arch } from '../util/arch.js';
import { ISO_MEDIA, ISO_PLATFORMS, isoMedium, noIsoReason } from './iso.js';
import { usageError } from '../util/errors.js';
import { plannedKernel } from './planned-family.js';

export const IMAGE_FORMATS = ['squashfs', 'system', 'iso'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
export const COMPRESSIONS = ['zstd', 'xz'] as const;

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,39}$/;
const PACKAGE_ENTRY_RE =
  /^((?:[a-z0-9][a-z0-9+_-]*\/)?[a-z0-9][a-z0-9+.-]+)(?: \[(!?[a-z0-9_]+(?: !?[a-z0-9_]+)*)\])?$/;

const packageEntry = () =>
  matching(
    PACKAGE_ENTRY_RE,
    (v) => `'${v}' is not a package name (with an optional [arch ...] or [!arch ...])`,
  );

/**
 * The packages of a list that are for arch: 'name [a b]' only on a or b, 'name [!a]' everywhere but
 * a (architectures by our name or Debian's). Throws on an architecture nobody knows, or a list that
 * mixes both kinds.
 */
export function packagesFor(entries: string[], arch: Arch): string[] {
  const out: string[] = [];
  for (const entry of entries) {
    const [, name, restriction] = PACKAGE_ENTRY_RE.exec(entry) ?? [];
    if (!name) throw new Error(`'${entry}' is not a package entry`);
    if (!restriction) {
      out.push(name);
      continue;
    }
    const words = restriction.split(' ');
    const negated = words.filter((w) => w.startsWith('!')).length;
    if (negated && negated !== words.length)
      throw new Error(`'${entry}': an architecture list is all [a b] or all [!a !b]`);
    const arches = words.map((w) => parseArch(w.replace(/^!/, '')));
    if (arches.includes(arch) !== negated > 0) out.push(name);
  }
  return out;
}

interface ImageFieldDecl {
  schema: z.ZodMiniType;
  doc: string;
  /** The value a config without the field gets. */
  value?: unknown;
  /** How the default reads when it is not `value`. */
  default?: string;
  required?: boolean;
}

export const IMAGE_FIELDS = {
  name: {
    schema: z.string().check(
      z.regex(NAME_RE, {
        error: (i) => `'${String(i.input)}' is not a valid image name (a-z, 0-9, '.', '_', '-'; up to 40)`,
      }),
    ),
    doc: 'the image name: NAME.squashfs, NAME.iso, and the ISO volume label',
    required: true,
  },
  distro: {
    schema: z.string(),
    doc: 'the distribution, from vmstub distros: Debian, Ubuntu, the RPM family (EL, Fedora) or Gentoo',
    required: true,
  },
  arch: { schema: z.enum(ARCHES), doc: 'the architecture of the image', default: "the host's" },
  hostname: { schema: hostname(), doc: 'host name written into the image', default: 'the name' },
  kernel: {
    schema: packageName(),
    doc: 'the kernel package',
    default:
      'Debian and Ubuntu: with an ISO, the general kernel (linux-image-amd64 on Debian amd64: the VM kernel has no driver for SATA CD drives or USB sticks), otherwise the VM kernel (linux-image-cloud-amd64); the RPM family: kernel; Gentoo: sys-kernel/gentoo-kernel-bin',
  },
  packages: {
    schema: z.array(packageEntry()),
    doc: "packages installed after the bootstrap (Gentoo: category/name atoms too); 'name [arch ...]' or 'name [!arch ...]' limits one to architectures (as in Debian's Build-Depends)",
    value: [],
  },
  recommends: {
    schema: z.boolean(),
    doc: "install the packages' Recommends too (as apt does by default)",
    value: false,
  },
  files: {
    schema: z.string(),
    doc: 'a directory whose contents are copied into the root (owned by root) before the hook, relative to this file',
  },
  hook: {
    schema: z.string(),
    doc: 'an executable run once with the root directory as $1, relative to this file',
  },
  users: {
    schema: z.array(user),
    doc: `accounts: name, sudo, passwordHash (none: locked, SSH keys only), sshKeys, groups, shell (default ${DEFAULT_SHELL})`,
    value: [],
  },
  root: {
    schema: z.strictObject({
      sshKeys: z.optional(z.array(sshKey())),
      passwordHash: z.optional(passwordHash()),
    }),
    doc: "root's password hash (root is locked without one) and SSH keys",
    value: {},
  },
  mirror: { schema: url(), doc: 'the mirror the build uses', default: "the distribution's" },
  keyring: {
    schema: z.string(),
    doc: "the key the mirror's Release files (Debian, Ubuntu), packages (RPM) or stage3 DIGESTS (Gentoo) are signed with, for a mirror of your own, relative to this file; RPM images keep it for their repositories, Debian and Ubuntu images name the distribution's keyring in their apt sources",
    default: "the distribution's keys",
  },
  securityMirror: {
    schema: url(),
    doc: 'the security mirror the build uses (Debian and Ubuntu)',
    default: "the distribution's (the mirror, when one is given)",
  },
  finalMirror: {
    schema: url(),
    doc: "the mirror written into the image's apt sources, or its yum and dnf repositories",
    default: "the distribution's official one",
  },
  finalSecurityMirror: {
    schema: url(),
    doc: "the security mirror written into the image's apt sources (Debian and Ubuntu)",
    default: "the distribution's official one",
  },
  formats: {
    schema: z.array(z.enum(IMAGE_FORMATS)),
    doc: 'what to make: squashfs (NAME.squashfs, .vmlinuz, .initrd), system (the squashfs checked as an image vmstub run boots), iso (a live ISO: hybrid BIOS and UEFI on x86_64, UEFI on aarch64)',
    value: ['squashfs'],
  },
  medium: {
    schema: z.string(),
    doc: `what the ISO is written to, and so the most it may take: ${Object.keys(ISO_MEDIA).join(', ')}, or a size (a USB stick: 8G); a bigger ISO is not delivered`,
    default: 'no limit',
  },
  docs: {
    schema: z.boolean(),
    doc: 'keep manuals, documentation and translations (false, Debian and Ubuntu only: only copyright files, as dpkg path-excludes that stay in the image)',
    value: true,
  },
  cmdline: {
    schema: z.string().check(z.regex(/^[^\n]*$/, { error: 'the kernel command line is one line' })),
    doc: "kernel command line the image boots with, after vmstub's own (vmstub run and the ISO's menu)",
    value: '',
  },
  compression: { schema: z.enum(COMPRESSIONS), doc: 'squashfs compression', value: 'zstd' },
  compressionLevel: {
    schema: z
      .int()
      .check(z.gte(1, { error: 'is too small (1 to 22)' }), z.lte(22, { error: 'is too large (1 to 22)' })),
    doc: 'zstd level, 1 to 22 (higher: smaller and slower to build)',
    default: "mksquashfs's (15)",
  },
} satisfies Record<string, ImageFieldDecl>;

export type ImageField = keyof typeof IMAGE_FIELDS;
const FIELDS = IMAGE_FIELDS as Record<ImageField, ImageFieldDecl>;
export const imageFields = Object.keys(FIELDS) as ImageField[];

const fileSchema = z.strictObject(
  Object.fromEntries(imageFields.map((k) => [k, z.optional(FIELDS[k].schema)])) as {
    [K in ImageField]: z.ZodMiniOptional<(typeof IMAGE_FIELDS)[K]['schema']>;
  },
);
type Parsed = z.output<typeof fileSchema>;

export interface ImageUser {
  name: string;
  sudo: boolean;
  passwordHash?: string;
  sshKeys: string[];
  groups: string[];
  shell: string;
}

/** An image config, validated and with every default filled in. */
export interface ImageConfig {
  name: string;
  distro: DebDistro | RpmDistro | GentooDistro;
  arch: Arch;
  hostname: string;
  kernel: string;
  packages: string[];
  recommends: boolean;
  /** Absolute path of the directory copied into the root. */
  files?: string;
  /** Absolute path of the hook. */
  hook?: string;
  users: ImageUser[];
  root: { passwordHash?: string; sshKeys: string[] };
  mirror: string;
  /** Absolute path of the key the mirror is signed with, when it is not the distribution's. */
  keyring?: string;
  /** Debian and Ubuntu; the mirror's for the RPM family, which has none of its own. */
  securityMirror: string;
  finalMirror: string;
  finalSecurityMirror: string;
  formats: ImageFormat[];
  /** The most the ISO may take, and what holds that much. */
  medium?: { name: string; bytes: number };
  docs: boolean;
  cmdline: string;
  compression: (typeof COMPRESSIONS)[number];
  compressionLevel?: number;
  /** The file it came from. */
  file: string;
}

export function fieldDefaultText(k: ImageField): string | undefined {
  const f = FIELDS[k];
  if (f.default !== undefined) return f.default;
  if (f.value === undefined || (Array.isArray(f.value) && !f.value.length)) return undefined;
  if (typeof f.value === 'object' && !Array.isArray(f.value)) return undefined;
  return Array.isArray(f.value) ? f.value.join(', ') : String(f.value);
}

/**
 * Validates an image config and fills in its defaults. Every field is checked and every problem is
 * reported at once, in one line, each with its field and its line in the file.
 */
export function resolveImageConfig(
  input: Record<string, unknown>,
  src: ConfigSource & { baseDir: string },
  hostArch: Arch,
): ImageConfig {
  const problems: Problem[] = [];
  const problem = (path: readonly PropertyKey[], message: string) => problems.push({ path, message });
  const parsed = fileSchema.safeParse(input);
  if (!parsed.success) for (const issue of parsed.error.issues) problems.push(...issueProblems(issue, input));
  const bad = new Set(problems.map((p) => String(p.path[0])));
  const ok = (k: ImageField) => !bad.has(k) && input[k] !== undefined;
  const i = (parsed.success ? parsed.data : input) as Parsed;

  for (const k of imageFields)
    if (FIELDS[k].required && input[k] === undefined) problem([k], `${k} is required`);
  const found = ok('distro') ? CATALOG.find((c) => c.id === i.distro) : undefined;
  if (ok('distro') && !found)
    problem(['distro'], `unknown distribution '${i.distro}' (vmstub distros lists them)`);
  const distro = found;
  // Built with the installer's own steps and the stub's tools (image/planned-family.ts).
  const planned = distro !== undefined && distro.family !== 'deb';
  const arch = (ok('arch') ? i.arch : undefined) ?? hostArch;
  if (distro && !distro.arches.includes(arch))
    problem(['arch'], `${distro.name} is not available for ${arch} (${distro.arches.join(', ')})`);
  else if (planned && arch !== hostArch)
    problem(
      ['arch'],
      `an image of ${distro.name} is built for this machine's architecture (${hostArch}) only so far: the stub's tools run natively`,
    );
  if (planned)
    for (const k of ['securityMirror', 'finalSecurityMirror'] as const)
      if (input[k] !== undefined)
        problem([k], `${distro.name} has no security mirror of its own (mirror serves all)`);
  if (planned && i.docs === false)
    problem(['docs'], "false is for Debian and Ubuntu images (dpkg's path rules)");

  let hook: string | undefined;
  if (ok('hook')) {
    hook = resolve(src.baseDir, i.hook!);
    if (!existsSync(hook) || !statSync(hook).isFile()) problem(['hook'], `${hook} not found`);
    else {
      try {
        accessSync(hook, constants.X_OK);
      } catch {
        problem(['hook'], `${hook} is not executable (chmod +x it)`);
      }
    }
  }
  let keyring: string | undefined;
  if (ok('keyring')) {
    keyring = resolve(src.baseDir, i.keyring!);
    if (!existsSync(keyring) || !statSync(keyring).isFile()) problem(['keyring'], `${keyring} not found`);
  }
  let files: string | undefined;
  if (ok('files')) {
    files = resolve(src.baseDir, i.files!);
    if (!existsSync(files) || !statSync(files).isDirectory())
      problem(['files'], `${files} is not a directory`);
  }
  if (ok('compressionLevel') && (i.compression ?? 'zstd') !== 'zstd')
    problem(['compressionLevel'], `mksquashfs takes a level for zstd only (compression is ${i.compression})`);
  const users = ok('users') ? i.users! : [];
  const names = new Set<string>();
  users.forEach((u, n) => {
    if (u.name === 'root') problem(['users', n, 'name'], "root is configured under 'root:'");
    else if (names.has(u.name)) problem(['users', n, 'name'], `'${u.name}' is listed twice`);
    names.add(u.name);
  });
  let packages: string[] = [];
  if (ok('packages'))
    i.packages!.forEach((entry, n) => {
      try {
        const names = packagesFor([entry], arch);
        if (distro && distro.family !== 'gentoo' && names.some((p) => p.includes('/')))
          throw new Error(
            `'${entry}': category/name is Gentoo's form; ${distro.name} takes the package's name`,
          );
        packages.push(...names);
      } catch (e) {
        problem(['packages', n], (e as Error).message);
      }
    });
  packages = [...new Set(packages)];
  const formats = ok('formats') ? i.formats! : (FIELDS.formats.value as ImageFormat[]);
  if (ok('formats') && !formats.length) problem(['formats'], 'needs at least one of squashfs, system, iso');
  if (formats.includes('iso') && !ISO_PLATFORMS[arch]) problem(['formats'], noIsoReason(arch));
  let medium: ImageConfig['medium'];
  if (ok('medium')) {
    if (!formats.includes('iso')) problem(['medium'], 'is where an ISO goes, and formats has no iso');
    try {
      medium = isoMedium(i.medium!);
    } catch (e) {
      problem(['medium'], (e as Error).message);
    }
  }
  const name = i.name ?? '';
  if (ok('name') && formats.includes('iso') && name.length > 32)
    problem(['name'], 'an ISO volume label holds 32 characters; shorten the name');
  if (ok('name') && input.hostname === undefined && !HOSTNAME_RE.test(name))
    problem(['hostname'], `the name '${name}' is not a host name: give hostname`);

  if (problems.length || !parsed.success || !distro) {
    if (!problems.length) problem([], 'is not a valid image config');
    throw usageError(formatProblems(problems, src));
  }
  const officialMirror = distro.family === 'deb' ? distro.mirror[arch]! : distro.mirror;
  const officialSecurity = distro.family === 'deb' ? distro.securityMirror[arch]! : officialMirror;
  const mirror = i.mirror ?? officialMirror;
  const kernel =
    distro.family === 'deb'
      ? (formats.includes('iso') ? distro.mediaKernelPackage : distro.kernelPackage)[arch]!
      : plannedKernel(distro.family);
  return {
    name,
    distro,
    arch,
    hostname: i.hostname ?? name,
    kernel: i.kernel ?? kernel,
    packages,
    recommends: i.recommends ?? false,
    files,
    hook,
    users: users.map((u) => ({
      name: u.name,
      sudo: u.sudo === true,
      passwordHash: u.passwordHash,
      sshKeys: (u.sshKeys ?? []).map((k) => k.trim()),
      groups: u.groups ?? [],
      shell: u.shell ?? DEFAULT_SHELL,
    })),
    root: { passwordHash: i.root?.passwordHash, sshKeys: (i.root?.sshKeys ?? []).map((k) => k.trim()) },
    mirror,
    keyring,
    securityMirror: i.securityMirror ?? (i.mirror ? mirror : officialSecurity),
    finalMirror: i.finalMirror ?? officialMirror,
    finalSecurityMirror: i.finalSecurityMirror ?? (i.finalMirror ? i.finalMirror : officialSecurity),
    formats: [...new Set(formats)],
    medium,
    docs: i.docs ?? true,
    cmdline: (i.cmdline ?? '').trim(),
    compression: i.compression ?? 'zstd',
    compressionLevel: i.compressionLevel,
    file: src.where,
  };
}

/** Reads and resolves an image config file; `overrides` (from flags) replace the file's fields. */
export function readImageConfig(
  path: string,
  hostArch: Arch,
  overrides: Partial<Record<ImageField, unknown>> = {},
): ImageConfig {
  const file = resolve(path);
  const { value, lineOf } = readYamlMapping(file, 'name: web, distro: debian12');
  const given = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return resolveImageConfig(
    { ...value, ...given },
    {
      where: path,
      lineOf,
      baseDir: dirname(file),
      fromFlags: new Set(Object.keys(given)),
      flagOf: (f) => `--${f}`,
    },
    hostArch,
  );
}

/** The JSON Schema of an image config, for editors. */
export function imageJsonSchema(): Record<string, unknown> {
  const file = z.strictObject(
    Object.fromEntries(
      imageFields.map((k) => {
        const shown = fieldDefaultText(k);
        const doc = FIELDS[k].doc + (shown ? ` (default: ${shown})` : '');
        return [
          k,
          FIELDS[k].required
            ? FIELDS[k].schema.register(z.globalRegistry, { description: doc })
            : z.optional(FIELDS[k].schema).register(z.globalRegistry, { description: doc }),
        ];
      }),
    ),
  );
  const schema = z.toJSONSchema(file, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  return {
    $schema: schema.$schema,
    title: 'vmstub image config',
    description: 'What vmstub image build FILE.yaml reads (docs/images.md).',
    ...schema,
  };
}

export const imageFieldDoc = (k: ImageField): string => FIELDS[k].doc;
export const imageFieldRequired = (k: ImageField): boolean => FIELDS[k].required === true;
