import { Option } from '@commander-js/extra-typings';
import { annotate, repeatable } from './options.js';
import { hostPublicKeys } from '../installer/host-defaults.js';
import {
  defaultText,
  fieldDecl,
  fileFields,
  type FlagDecl,
  type SpecField,
} from '../installer/spec-fields.js';
import { readSpecFile, type SpecInput, type SpecSource } from '../installer/spec.js';
import { CLOUD_INIT_PACKAGE } from '../cloud-init/seed.js';
import { checkSeedable, readUserData, translateUserData } from '../cloud-init/user-data.js';
import { note } from './output.js';

/** Which flags each command takes: the machine fields only where a machine is made. */
export type SpecFlagSet = 'create' | 'plan' | 'install';

interface DeclaredFlag {
  field: SpecField;
  decl: FlagDecl;
  option: Option;
}

/** Commander's options for the spec fields, made from the field table (nothing here names a field). */
function declaredFlags(set: SpecFlagSet): DeclaredFlag[] {
  return fileFields.flatMap((field) => {
    const f = fieldDecl(field);
    if (f.machine && set !== 'create') return [];
    if (field === 'distro' && set === 'install') return [];
    return (f.flags ?? []).map((decl) => {
      const help = decl.help ?? f.doc;
      const option = decl.repeatable ? repeatable(decl.flags, help) : new Option(decl.flags, help);
      if (decl.parse) option.argParser(decl.parse);
      const choices = (f.schema as { options?: readonly string[] }).options;
      if (Array.isArray(choices)) option.choices(choices);
      return {
        field,
        decl,
        option: annotate(option, {
          ...(defaultText(f) && !decl.help && option.required ? { defaultText: defaultText(f) } : {}),
          specField: field,
        }),
      };
    });
  });
}

/**
 * A machine field's flag as `run` takes it: the declaration create's flag comes from, so both commands
 * parse, check and describe it alike.
 */
export function machineFlag(field: 'memory' | 'cpus' | 'forwards' | 'shares' | 'autoForward'): Option {
  return declaredFlags('create').find((f) => f.field === field)!.option;
}

/** Adds --config and the spec's flags to a command. */
export function withSpecOptions<C extends { addOption(option: Option): unknown }>(
  cmd: C,
  set: SpecFlagSet,
): C {
  cmd.addOption(
    new Option(
      '--config <FILE>',
      'install spec (YAML or JSON; vmstub schema spec describes it); flags override it',
    ),
  );
  cmd.addOption(
    new Option(
      '--user-data <FILE>',
      "cloud-init #cloud-config user-data, checked against cloud-init's schema; the installer applies its common keys, or seeds it when the packages include cloud-init (see cloud-init user-data in docs/commands.md)",
    ),
  );
  for (const { option } of declaredFlags(set)) cmd.addOption(option);
  return cmd;
}

/** The packages a spec file and the flags name. */
function packagesOf(
  set: SpecFlagSet,
  raw: Record<string, unknown>,
  values: Record<string, unknown>,
): unknown[] {
  const flag = declaredFlags(set)
    .find((f) => f.field === 'packages')!
    .option.attributeName();
  return [
    ...(Array.isArray(raw.packages) ? raw.packages : []),
    ...((values[flag] as unknown[] | undefined) ?? []),
  ];
}

/** user-data's fields on a spec file's: its scalars replace the file's, its lists (root's keys too) add to them. */
function mergeOnto(raw: Record<string, unknown>, add: Record<string, unknown>) {
  for (const [k, v] of Object.entries(add)) {
    if (k === 'root') {
      const root = (raw.root as { sshKeys?: string[] } | undefined) ?? {};
      const keys = (v as { sshKeys: string[] }).sshKeys;
      raw.root = { ...root, sshKeys: [...(root.sshKeys ?? []), ...keys] };
    } else if (Array.isArray(v)) raw[k] = [...(Array.isArray(raw[k]) ? (raw[k] as unknown[]) : []), ...v];
    else raw[k] = v;
  }
}

/**
 * The spec from --config, then --user-data, then the flags on top: a scalar flag replaces the file's
 * value, a repeatable one adds to the file's list. The result says which fields flags touched, for
 * messages.
 */
export function specFromOptions(
  set: SpecFlagSet,
  values: Record<string, unknown>,
  extra: Partial<SpecInput> = {},
): { input: SpecInput; source: SpecSource } {
  const file = values.config as string | undefined;
  const { input, source } = file
    ? readSpecFile(file)
    : { input: {} as SpecInput, source: { where: 'flags' } as SpecSource };
  const raw = input as Record<string, unknown>;
  const fromFlags = new Set<string>();
  if (typeof values.userData === 'string') {
    const userData = readUserData(values.userData);
    if (packagesOf(set, raw, values).includes(CLOUD_INIT_PACKAGE)) {
      // The system runs cloud-init itself: it gets the user-data as written, and vmstub applies none of it.
      checkSeedable(userData.config, values.userData);
      raw.userData = userData.text;
      note(`${values.userData}: seeded for the system's own cloud-init, which applies it at the first boot`);
    } else {
      const { input: fromUserData, warnings } = translateUserData(userData.config, values.userData);
      for (const w of warnings) note(`warning: ${w}`);
      mergeOnto(raw, fromUserData as Record<string, unknown>);
    }
  }
  for (const [k, v] of Object.entries(extra))
    if (v !== undefined) {
      raw[k] = v;
      fromFlags.add(k);
    }
  const usersBefore = Array.isArray(raw.users) ? raw.users.length : 0;
  for (const { field, decl, option } of declaredFlags(set)) {
    const value = values[option.attributeName()];
    if (value === undefined) continue;
    fromFlags.add(field);
    if (decl.apply) decl.apply(raw, value);
    else if (decl.repeatable) {
      const before = Array.isArray(raw[field]) ? (raw[field] as unknown[]) : [];
      raw[field] = [...before, ...(value as unknown[])];
    } else raw[field] = value;
  }
  // Users made by --user get root's keys: the ones given, else the host user's own.
  if (Array.isArray(raw.users))
    for (const u of (raw.users as Record<string, unknown>[]).slice(usersBefore))
      u.sshKeys ??= input.root?.sshKeys ?? hostPublicKeys();
  return { input, source: { ...source, fromFlags } };
}
