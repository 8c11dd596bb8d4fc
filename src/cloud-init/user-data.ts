/**
 * cloud-init NoCloud user-data (`#cloud-config`), checked against cloud-init's own JSON Schema and
 * turned into the install spec: vmstub's systems have no cloud-init, so the installer applies the
 * common subset itself. A key it does not apply is named in a warning, never dropped in silence.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Ajv, type ErrorObject } from 'ajv';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { formatProblems, readYamlMapping, type Problem } from '../config/problems.js';
import { shellLine } from '../installer/boot-commands.js';
import type { SpecInput } from '../installer/spec-fields.js';
import { usageError } from '../util/errors.js';
import { utf8Text } from '../util/text.js';
import cloudConfigSchema from './schema-cloud-config-v1.json' with { type: 'json' };

// The schema is cloud-init 25.1.4's (Debian 13's package installs it for `cloud-init schema`):
// cloudinit/config/schemas/schema-cloud-config-v1.json.

type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };
let compiled: Validate | undefined;

/**
 * cloud-init's schema is draft-04 with annotations of its own (deprecated, changed, label, hidden):
 * strict mode off, so ajv reads those as the annotations they are.
 */
function validator(): Validate {
  if (compiled) return compiled;
  const Draft04 = AjvDraft04 as unknown as typeof Ajv;
  const ajv = new Draft04({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv, f: string[]) => void)(ajv, ['uri', 'hostname', 'date']);
  compiled = ajv.compile(cloudConfigSchema) as Validate;
  return compiled;
}

function pathOf(pointer: string): (string | number)[] {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

const isUnion = (e: ErrorObject) => e.keyword === 'oneOf' || e.keyword === 'anyOf';

/**
 * ajv's errors as problems: a oneOf or anyOf that no form matched is one problem, not one per form it
 * tried, unless what is wrong lies deeper (a mapping's field): then that is said instead. An unknown
 * key is named.
 */
export function schemaProblems(errors: readonly ErrorObject[]): Problem[] {
  const unions = errors.filter(isUnion);
  const detail = (e: ErrorObject) =>
    !isUnion(e) &&
    !unions.some((u) => e.schemaPath.startsWith(u.schemaPath + '/') || e.instancePath === u.instancePath);
  const insideUnion = (e: ErrorObject) =>
    isUnion(e)
      ? errors.some((d) => detail(d) && d.instancePath.startsWith(e.instancePath + '/'))
      : !detail(e);
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const e of errors) {
    if (insideUnion(e)) continue;
    let path = pathOf(e.instancePath);
    let message = e.message ?? 'is not valid';
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      path = [...path, key];
      message = path.length === 1 ? 'is not a cloud-config key' : 'is not a key here';
    } else if (e.keyword === 'oneOf' || e.keyword === 'anyOf')
      message = 'matches none of the forms it may take';
    else if (e.keyword === 'enum')
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ')}`;
    const text = `${path.join('/')}\0${message}`;
    if (seen.has(text)) continue;
    seen.add(text);
    problems.push({ path, message });
  }
  return problems;
}

/**
 * YAML's !!binary (write_files content) is bytes; cloud-init writes them as they are, so the schema's
 * "string" is taken to cover them.
 */
function asSchemaSees(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString('latin1');
  if (Array.isArray(v)) return v.map(asSchemaSees);
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asSchemaSees(x)]));
  return v;
}

export interface UserData {
  /** The file as written: the seed a system with cloud-init gets. */
  text: string;
  config: Record<string, unknown>;
}

/**
 * A #cloud-config file, read as cloud-init reads it (YAML 1.1: yes/no are booleans) and checked
 * against its schema: every problem at once, each with its path and line.
 */
export function readUserData(file: string, flag = '--user-data'): UserData {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw usageError(`${flag}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (!/^#cloud-config[ \t]*\r?\n/.test(text + '\n'))
    throw usageError(
      `${file}: user-data must be a #cloud-config file (its first line '#cloud-config'); scripts, #include and MIME parts are not taken`,
    );
  const { value, lineOf } = readYamlMapping(file, 'hostname: web1', '1.1');
  const validate = validator();
  if (!validate(asSchemaSees(value)))
    throw usageError(formatProblems(schemaProblems(validate.errors ?? []), { where: file, lineOf }));
  return { text, config: value };
}

/**
 * user-data seeded for the system's own cloud-init: refused where it would replace the SSH host keys
 * vmstub made and recorded (known_hosts would then not match, and create's login check fails).
 */
export function checkSeedable(config: Record<string, unknown>, file: string): void {
  const replacing = [
    ...(config.ssh_deletekeys === true ? ['ssh_deletekeys: true'] : []),
    ...(config.ssh_keys !== undefined ? ['ssh_keys'] : []),
  ];
  if (replacing.length)
    throw usageError(
      `${file}: ${replacing.join(', ')}: would replace the SSH host keys vmstub made and recorded for the system`,
    );
}

/** The keys the installer applies itself; every other one gets a warning. */
const APPLIED = [
  'hostname',
  'timezone',
  'locale',
  'keyboard',
  'packages',
  'users',
  'ssh_authorized_keys',
  'write_files',
  'runcmd',
  'bootcmd',
] as const;

/** What a cloud-init user entry may say that vmstub applies. */
const USER_KEYS = new Set([
  'name',
  'groups',
  'sudo',
  'shell',
  'lock_passwd',
  'passwd',
  'hashed_passwd',
  'ssh_authorized_keys',
]);

export interface Translation {
  /** Spec fields: scalars a flag may still override, lists flags add to. */
  input: SpecInput;
  warnings: string[];
}

const list = (v: unknown): string[] =>
  Array.isArray(v)
    ? v.map(String)
    : typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];

/**
 * Validated user-data as spec fields. cloud-init's "default user" is root here (vmstub makes no
 * distribution user), so top-level ssh_authorized_keys authorize root, in place of your own keys.
 */
export function translateUserData(config: Record<string, unknown>, file: string): Translation {
  const input: Record<string, unknown> = {};
  const warnings: string[] = [];
  const warn = (key: string, why: string) => warnings.push(`${file}: ${key}: ${why}`);
  for (const key of Object.keys(config))
    if (!(APPLIED as readonly string[]).includes(key))
      warn(key, "not applied: vmstub's installer applies only " + APPLIED.join(', '));

  if (typeof config.hostname === 'string') input.hostname = config.hostname;
  if (typeof config.timezone === 'string') input.timezone = config.timezone;
  if (typeof config.locale === 'string') input.locale = config.locale;
  const keyboard = config.keyboard as { layout?: string; model?: string; variant?: string } | undefined;
  if (keyboard?.layout) {
    input.keyboard = keyboard.layout;
    if (keyboard.model || keyboard.variant) warn('keyboard', 'only the layout is applied');
  }
  if (Array.isArray(config.packages)) {
    const pinned = config.packages.map((p, i) => [p, i] as const).filter(([p]) => typeof p !== 'string');
    if (pinned.length)
      throw usageError(
        `${file}: ${pinned.map(([, i]) => `packages[${i}]`).join(', ')}: version pins are not applied by vmstub's installer; name the package alone`,
      );
    input.packages = config.packages;
  }
  if (Array.isArray(config.ssh_authorized_keys))
    input.root = { sshKeys: config.ssh_authorized_keys.map(String) };

  if (Array.isArray(config.write_files))
    input.files = config.write_files.map((f, i) =>
      writtenFile(f as Record<string, unknown>, `write_files[${i}]`, file, warn),
    );
  if (Array.isArray(config.runcmd)) input.firstBoot = config.runcmd.map(commandLine);
  if (Array.isArray(config.bootcmd)) input.everyBoot = config.bootcmd.map(commandLine);
  for (const key of ['runcmd', 'bootcmd'] as const)
    ((config[key] as unknown[] | undefined) ?? []).forEach((c, i) => {
      if (/^cloud-init-per\b/.test(commandLine(c)))
        warn(`${key}[${i}]`, 'runs cloud-init-per, which only a system with cloud-init has');
    });

  const users: Record<string, unknown>[] = [];
  const entries = typeof config.users === 'string' ? list(config.users) : ((config.users as unknown[]) ?? []);
  entries.forEach((entry, i) => {
    const at = `users[${i}]`;
    if (typeof entry === 'string') {
      if (entry === 'default') warn(at, "'default' (the distribution's default user) is root in vmstub");
      else users.push({ name: entry });
      return;
    }
    if (Array.isArray(entry)) {
      for (const name of list(entry)) users.push({ name });
      return;
    }
    const u = entry as Record<string, unknown>;
    if (typeof u.name !== 'string') {
      warn(at, `not applied: a user without a name (${Object.keys(u).join(', ')})`);
      return;
    }
    for (const k of Object.keys(u)) if (!USER_KEYS.has(k)) warn(`${at}.${k}`, 'not applied');
    const user: Record<string, unknown> = { name: u.name };
    const groups = list(u.groups);
    if (groups.length) user.groups = groups;
    if (typeof u.shell === 'string') user.shell = u.shell;
    if (Array.isArray(u.ssh_authorized_keys)) user.sshKeys = u.ssh_authorized_keys.map(String);
    const rules = Array.isArray(u.sudo) ? u.sudo.map(String) : typeof u.sudo === 'string' ? [u.sudo] : [];
    if (rules.length) {
      user.sudo = true;
      warn(
        `${at}.sudo`,
        'applied as membership of the sudo group (without a password hash, sudo asks for none), not as the rule itself',
      );
    }
    const hash = (u.hashed_passwd ?? u.passwd) as string | undefined;
    // cloud-init locks the password unless lock_passwd is false, a hash given or not.
    if (hash && u.lock_passwd === false) user.passwordHash = hash;
    else if (hash)
      warn(`${at}.passwd`, 'not set: lock_passwd is true (its default), so the password is locked');
    users.push(user);
  });
  if (users.length) input.users = users;
  return { input: input as SpecInput, warnings };
}

/** A runcmd or bootcmd entry: a shell line as it is, an argument list quoted into one. */
const commandLine = (entry: unknown): string =>
  Array.isArray(entry) ? shellLine(entry.map(String)) : String(entry);

/** The bytes of a write_files entry's content as its encoding says (!!binary YAML is bytes already). */
function contentBytes(content: unknown, encoding: string): Buffer {
  const raw =
    content instanceof Uint8Array ? Buffer.from(content) : Buffer.from(String(content ?? ''), 'utf8');
  const base64 = /(^|\+)(b64|base64)$/.test(encoding);
  const bytes = base64 ? Buffer.from(raw.toString('latin1'), 'base64') : raw;
  return /^(gz|gzip)(\+|$)/.test(encoding) ? gunzipSync(bytes) : bytes;
}

/** A write_files entry as a spec file: cloud-init's defaults (root:root, 0644) are the spec's. */
function writtenFile(
  f: Record<string, unknown>,
  at: string,
  file: string,
  warn: (key: string, why: string) => void,
): Record<string, unknown> {
  if (f.source !== undefined)
    warn(`${at}.source`, 'not fetched: vmstub writes the content given (empty without one)');
  const encoding = typeof f.encoding === 'string' ? f.encoding : 'text/plain';
  let bytes: Buffer;
  try {
    bytes = contentBytes(f.content, encoding);
  } catch (e) {
    throw usageError(`${file}: ${at}.content: is not ${encoding} (${(e as Error).message})`);
  }
  const text = utf8Text(bytes);
  const written: Record<string, unknown> =
    text !== undefined
      ? { path: f.path, content: text }
      : { path: f.path, content: bytes.toString('base64'), encoding: 'base64' };
  if (typeof f.permissions === 'string') written.mode = f.permissions.replace(/^0o/, '0');
  if (typeof f.owner === 'string') written.owner = f.owner;
  if (f.append === true) written.append = true;
  return written;
}
