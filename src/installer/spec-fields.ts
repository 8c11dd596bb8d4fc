import { readFileSync } from 'node:fs';
import * as z from 'zod/mini';
import {
  DEFAULT_SHELL,
  LOCALE_RE,
  TIMEZONE_RE,
  hostname,
  matching,
  packageName,
  parsedBy,
  passwordHash,
  sshKey,
  url,
  user,
  writtenFile,
} from '../config/fields.js';
import { ARCHES } from '../util/arch.js';
import { usageError } from '../util/errors.js';
import { parseCpuCount, parseMemoryMiB, parseSize } from '../util/size.js';
import { DEFAULTS } from '../vm/definition-builder.js';
import { parseHostFwd } from '../vm/network.js';

/**
 * The install spec, declared once: each field's type and validation (a zod schema), its documentation,
 * how its default reads, and the flags that set it. The file schema, the JSON Schema editors use, the
 * command-line options of create, plan and install, the merge of flags onto a file, and the option
 * tables in docs/commands.md are all made from this table.
 */

export const FILESYSTEMS = ['xfs', 'btrfs', 'ext4'] as const;
export const TARGETS = ['disk', 'share', 'directory'] as const;
export const BOOTSTRAPS = ['mmdebstrap', 'debootstrap'] as const;
export const UNLOCK_MODES = ['host', 'console'] as const;

/** The keys in a public key file (one per line, as ~/.ssh/*.pub and authorized_keys hold them). */
function publicKeysIn(file: string): string[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  } catch {
    throw usageError(`--ssh-key: cannot read ${file}`);
  }
}

/** What a flag does to the spec input: by default it sets the field (or, repeatable, appends to it). */
export interface FlagDecl {
  /** As commander takes it: `--hostname <NAME>`. */
  flags: string;
  help?: string;
  repeatable?: boolean;
  /** Checks and converts the flag's text as it is parsed (a usage error names the flag). */
  parse?: (text: string) => unknown;
  /**
   * For flags that do more than set their field (key files read into keys, user names made users); it
   * gets the flag's value as parsed (a list for a repeatable flag).
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each flag's own value type
  apply?: (input: Record<string, unknown>, value: any) => void;
}

export interface FieldDecl {
  schema: z.ZodMiniType;
  doc: string;
  /** The value a spec without the field gets. */
  value?: unknown;
  /** How the default reads (help, docs, JSON Schema) when it is not `value`: one the host or the name gives. */
  default?: string;
  /** A spec cannot be resolved without it. */
  required?: boolean;
  flags?: FlagDecl[];
  /** Describes the VM rather than the system: create uses it; the stub never receives it. */
  machine?: boolean;
  /** Set by vmstub itself, never by a file or a flag. */
  internal?: boolean;
}

export const SPEC_FIELDS = {
  distro: {
    schema: z.string(),
    doc: 'the distribution (vmstub distros lists them)',
    required: true,
    flags: [{ flags: '--distro <ID>' }],
  },
  arch: {
    schema: z.enum(ARCHES),
    doc: "the architecture of the system (another than the host's runs under TCG emulation)",
    default: "the host's",
    flags: [{ flags: '--arch <ARCH>' }],
  },
  hostname: {
    schema: hostname(),
    doc: 'host name',
    default: 'the instance name',
    flags: [{ flags: '--hostname <NAME>' }],
  },
  filesystem: {
    schema: z.enum(FILESYSTEMS),
    doc: 'root filesystem',
    value: 'xfs',
    flags: [{ flags: '--filesystem <FS>' }],
  },
  encrypt: {
    schema: z.boolean(),
    doc: 'the root filesystem inside a LUKS2 container on the data disk (Debian and Ubuntu)',
    value: false,
    flags: [{ flags: '--encrypt' }],
  },
  target: {
    schema: z.enum(TARGETS),
    doc: 'where the system goes: the data disk, the share tagged fs (no mkfs), or a directory (install --target-dir)',
    value: 'disk',
  },
  wipe: {
    schema: z.boolean(),
    doc: 'format the data disk even if it holds a filesystem or partition table',
    value: false,
    flags: [{ flags: '--wipe' }],
  },
  resume: {
    schema: z.boolean(),
    doc: 'start over on the disk an unfinished install left',
    value: false,
    internal: true,
  },
  renewIdentity: {
    schema: z.boolean(),
    doc: 'a clone: the disk holds a copy of an installed system; only its identity is made anew',
    value: false,
    internal: true,
  },
  rootTarball: {
    schema: z.boolean(),
    doc: 'the bootstrap was done on the host: unpack its root filesystem from the disk with serial vmstub-root',
    value: false,
    internal: true,
  },
  mirror: {
    schema: url(),
    doc: "the distribution's mirror",
    default: 'its official one',
    flags: [{ flags: '--mirror <URL>' }],
  },
  securityMirror: {
    schema: url(),
    doc: 'the security updates mirror',
    default: "the distribution's",
    flags: [{ flags: '--security-mirror <URL>' }],
  },
  proxy: {
    schema: url(),
    doc: 'HTTP proxy for the install and for the package manager afterwards',
    flags: [{ flags: '--proxy <URL>' }],
  },
  keyring: {
    schema: z.string(),
    doc: "keyring that signs the mirror, instead of the distribution's own: a file on this host for create (passed to the stub), a path in the stub for install",
    flags: [{ flags: '--keyring <FILE>' }],
  },
  timezone: {
    schema: matching(TIMEZONE_RE, (v) => `'${v}' is not a time zone name like Europe/Berlin`),
    doc: 'time zone',
    default: "the host's",
    flags: [{ flags: '--timezone <ZONE>' }],
  },
  locale: {
    schema: matching(LOCALE_RE, (v) => `'${v}' is not a locale like en_US.UTF-8`),
    doc: 'locale',
    value: 'C.UTF-8',
    flags: [{ flags: '--locale <LOCALE>' }],
  },
  keyboard: {
    schema: matching(/^[a-z]{2,8}$/, (v) => `'${v}' is not a keyboard layout like us or de`),
    doc: 'console keyboard layout',
    flags: [{ flags: '--keyboard <LAYOUT>' }],
  },
  bootstrap: {
    schema: z.enum(BOOTSTRAPS),
    doc: 'bootstrap tool (Debian and Ubuntu)',
    value: 'mmdebstrap',
    flags: [{ flags: '--bootstrap <TOOL>' }],
  },
  packages: {
    schema: z.array(packageName()),
    doc: 'packages to install too (Gentoo: an atom, category/name, or a name)',
    value: [],
    flags: [{ flags: '--package <NAME>', help: 'install this package too', repeatable: true }],
  },
  users: {
    schema: z.array(user),
    doc: `accounts besides root: name, sshKeys, sudo, passwordHash (none: SSH keys only), groups, shell (default ${DEFAULT_SHELL})`,
    flags: [
      {
        flags: '--user <NAME>',
        help: 'create a user with sudo and the same SSH keys as root',
        repeatable: true,
        // Its keys are root's, known once every flag is applied (see the CLI's mergeSpecFlags).
        apply: (input, names: string[]) => {
          const users = (input.users as unknown[] | undefined) ?? [];
          input.users = [...users, ...names.map((name) => ({ name, sudo: true }))];
        },
      },
    ],
  },
  root: {
    schema: z.strictObject({
      sshKeys: z.optional(z.array(sshKey())),
      passwordHash: z.optional(passwordHash()),
    }),
    doc: "root's SSH keys (default: yours) and password hash (root is locked without one)",
    flags: [
      {
        flags: '--ssh-key <FILE>',
        help: 'authorize the public keys in FILE for root and for --user accounts (default: your keys)',
        repeatable: true,
        apply: (input, files: string[]) => {
          const root = (input.root as Record<string, unknown> | undefined) ?? {};
          const keys = files.flatMap(publicKeysIn);
          input.root = { ...root, sshKeys: [...((root.sshKeys as string[] | undefined) ?? []), ...keys] };
        },
      },
      {
        flags: '--root-password-hash <HASH>',
        help: "root's password as a crypt(3) hash (root is locked otherwise)",
        apply: (input, hash: string) => {
          input.root = { ...((input.root as object | undefined) ?? {}), passwordHash: hash };
        },
      },
    ],
  },
  postInstall: {
    schema: z.array(z.string()),
    doc: 'commands run in the new system at the end',
    value: [],
    flags: [
      { flags: '--post-install <COMMAND>', help: 'run this in the new system at the end', repeatable: true },
    ],
  },
  files: {
    schema: z.array(writtenFile),
    doc: 'files written into the new system once its accounts exist: path, content, encoding (text or base64), mode (default 0644), owner (USER[:GROUP], default root), append',
    value: [],
  },
  firstBoot: {
    schema: z.array(z.string()),
    doc: 'shell commands run once as root at the first boot, once the network is online (vmstub-first-boot.service; create waits for them)',
    value: [],
    flags: [
      {
        flags: '--first-boot <COMMAND>',
        help: 'run this as root once, at the first boot (create waits for it)',
        repeatable: true,
      },
    ],
  },
  everyBoot: {
    schema: z.array(z.string()),
    doc: 'shell commands run as root early at every boot, before the network (vmstub-every-boot.service)',
    value: [],
    flags: [
      {
        flags: '--every-boot <COMMAND>',
        help: 'run this as root early at every boot',
        repeatable: true,
      },
    ],
  },
  userData: {
    schema: z.string(),
    doc: "a #cloud-config for the system's own cloud-init, seeded in /var/lib/cloud/seed/nocloud (--user-data, when the packages include cloud-init)",
    internal: true,
  },
  disk: {
    schema: parsedBy((v) => parseSize(v, '')),
    doc: 'size of the disk vmstub create makes',
    value: '8G',
    machine: true,
    flags: [{ flags: '--disk <SIZE>' }],
  },
  memory: {
    schema: z.union([
      z.int().check(z.minimum(64, { error: 'is too small (at least 64 MiB)' })),
      parsedBy((v) => parseMemoryMiB(v, '')),
    ]),
    doc: 'guest memory: MiB, or a size with a unit',
    value: DEFAULTS.memoryMiB,
    default: `${DEFAULTS.memoryMiB} MiB`,
    machine: true,
    flags: [{ flags: '-m, --memory <SIZE>' }],
  },
  cpus: {
    schema: z.union([
      z
        .int()
        .check(
          z.minimum(1, { error: 'must be a whole number from 1 to 64' }),
          z.maximum(64, { error: 'must be a whole number from 1 to 64' }),
        ),
      parsedBy((v) => parseCpuCount(v, '')),
    ]),
    doc: 'virtual CPUs',
    value: DEFAULTS.cpus,
    machine: true,
    flags: [{ flags: '-c, --cpus <N>', parse: (text) => parseCpuCount(text, '--cpus') }],
  },
  forwards: {
    schema: z.array(parsedBy(parseHostFwd)),
    doc: 'port forwards, [ADDR:]HOSTPORT:GUESTPORT[/udp] (host side defaults to 127.0.0.1)',
    machine: true,
    flags: [{ flags: '--hostfwd <SPEC>', help: 'forward a host port to the guest', repeatable: true }],
  },
  autoForward: {
    schema: z.boolean(),
    doc: 'forward each TCP port the guest starts listening on from the same port on 127.0.0.1, while it listens',
    value: false,
    machine: true,
    flags: [{ flags: '--auto-forward' }],
  },
  unlock: {
    schema: z.enum(UNLOCK_MODES),
    doc: "how an encrypted root is opened at each boot: 'host' keeps the passphrase with the instance (readable by its owner alone) and gives it to the VM; 'console' keeps nothing, and every boot asks on the console (vmstub console NAME)",
    value: 'host',
    machine: true,
    flags: [{ flags: '--unlock <HOW>' }],
  },
  keyFile: {
    schema: z.string(),
    doc: "the encrypted root's passphrase: this file's first line (relative to the spec file); without it, create asks at the terminal",
    default: 'asked at the terminal',
    machine: true,
    flags: [{ flags: '--key-file <FILE>' }],
  },
  shares: {
    schema: z.array(z.string()),
    doc: 'host directories shared with the VM, DIR[:TAG] (relative to the spec file)',
    machine: true,
    flags: [
      {
        flags: '--share <DIR[:TAG]>',
        help: 'share a host directory with the VM (virtiofs; tag defaults to fs)',
        repeatable: true,
      },
    ],
  },
} satisfies Record<string, FieldDecl>;

export type SpecField = keyof typeof SPEC_FIELDS;

const FIELDS = SPEC_FIELDS as Record<SpecField, FieldDecl>;

/** Every field of a spec file, optional: what YAML/JSON and flags give before defaults. */
export const specFileSchema = z.strictObject(
  Object.fromEntries((Object.keys(FIELDS) as SpecField[]).map((k) => [k, z.optional(FIELDS[k].schema)])) as {
    [K in SpecField]: z.ZodMiniOptional<(typeof SPEC_FIELDS)[K]['schema']>;
  },
);

/** A spec as written (a file, flags): every field optional. */
export type SpecInput = z.input<typeof specFileSchema>;
type Parsed = z.output<typeof specFileSchema>;

type Fields = typeof SPEC_FIELDS;
/** The fields that describe the system (what the stub receives), as opposed to the machine. */
export type SystemField = {
  [K in keyof Fields]: Fields[K] extends { machine: true } ? never : K;
}[keyof Fields];
type Settled = {
  [K in SystemField]: Fields[K] extends { value: unknown } | { default: string } | { required: true }
    ? K
    : never;
}[SystemField];

/**
 * A system field once resolved: present where the table gives a default (or requires the field),
 * optional where it has none. root and users are filled in further (keys from the host).
 */
export type ResolvedFields = { [K in Exclude<Settled, 'root' | 'users'>]-?: NonNullable<Parsed[K]> } & {
  [K in Exclude<SystemField, Settled | 'root' | 'users'>]?: Parsed[K];
};

/** How a field's default reads in help, docs and the JSON Schema. */
export function defaultText(f: FieldDecl): string | undefined {
  if (f.default !== undefined) return f.default;
  if (f.value === undefined || (Array.isArray(f.value) && !f.value.length)) return undefined;
  return String(f.value);
}

export const allFields = Object.keys(FIELDS) as SpecField[];

/** Fields a file may set (everything but what vmstub sets itself). */
export const fileFields = allFields.filter((k) => !FIELDS[k].internal);

export const fieldDecl = (k: SpecField): FieldDecl => FIELDS[k];

/** The JSON Schema of vmstub.yaml, for editors (yaml-language-server) and for anyone writing specs. */
export function specJsonSchema(): Record<string, unknown> {
  const file = z.strictObject(
    Object.fromEntries(
      fileFields.map((k) => {
        const f = FIELDS[k];
        const shown = defaultText(f);
        const described = z.optional(f.schema).register(z.globalRegistry, {
          description: shown ? `${f.doc} (default: ${shown})` : f.doc,
        });
        return [k, described];
      }),
    ),
  );
  const schema = z.toJSONSchema(file, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  return {
    $schema: schema.$schema,
    title: 'vmstub install spec (vmstub.yaml)',
    description:
      'What vmstub create, plan and install read from --config FILE. Flags override scalar fields and add to lists.',
    ...schema,
  };
}
