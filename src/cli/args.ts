import { usageError } from '../util/errors.js';

export interface OptionSpec {
  /** Long name, without the dashes. */
  name: string;
  short?: string;
  /** flag: no value; value: needs one; optional: `--opt` or `--opt=VALUE` only. */
  takes: 'flag' | 'value' | 'optional';
  repeat?: boolean;
  valueName?: string;
  help: string;
}

export interface CommandSpec {
  /** e.g. `run` or `image build` */
  name: string;
  summary: string;
  /** Positional part of the usage line, e.g. `[options] SYSTEM`. */
  usage: string;
  positionals: { name: string; optional?: boolean; variadic?: boolean }[];
  options: OptionSpec[];
  /** Words after `--` are passed on (e.g. a command for `ssh`). */
  passthrough?: boolean;
  /** Longer text for --help. */
  details?: string;
}

export interface ParsedArgs {
  values: Map<string, string | true | string[]>;
  positionals: string[];
  rest: string[];
  help: boolean;
}

const HELP: OptionSpec = { name: 'help', short: 'h', takes: 'flag', help: 'show this help' };

/** Parses argv against a command's spec; every mistake is one usage error naming the command. */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const options = [...spec.options, HELP];
  const byLong = new Map(options.map((o) => [o.name, o]));
  const byShort = new Map(options.filter((o) => o.short).map((o) => [o.short!, o]));
  const values = new Map<string, string | true | string[]>();
  const positionals: string[] = [];
  let rest: string[] = [];
  const hint = `see vmstub ${spec.name} --help`;

  const set = (opt: OptionSpec, value: string | true) => {
    if (opt.repeat) {
      const list = (values.get(opt.name) as string[] | undefined) ?? [];
      list.push(value as string);
      values.set(opt.name, list);
    } else {
      if (values.has(opt.name)) throw usageError(`${spec.name}: --${opt.name} given twice (${hint})`);
      values.set(opt.name, value);
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      if (!spec.passthrough) throw usageError(`${spec.name}: unexpected '--' (${hint})`);
      rest = argv.slice(i + 1);
      break;
    }
    let opt: OptionSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      opt = byLong.get(name);
      if (!opt) throw usageError(`${spec.name}: unknown option --${name} (${hint})`);
    } else if (arg.startsWith('-') && arg.length > 1) {
      opt = byShort.get(arg.slice(1, 2));
      if (!opt) throw usageError(`${spec.name}: unknown option ${arg.slice(0, 2)} (${hint})`);
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      positionals.push(arg);
      continue;
    }
    if (opt.takes === 'flag') {
      if (inline !== undefined) throw usageError(`${spec.name}: --${opt.name} takes no value (${hint})`);
      set(opt, true);
    } else if (opt.takes === 'optional') {
      set(opt, inline ?? true);
    } else {
      const value = inline ?? argv[++i];
      if (value === undefined) throw usageError(`${spec.name}: --${opt.name} needs a value (${hint})`);
      set(opt, value);
    }
  }

  const help = values.has('help');
  if (!help) {
    const required = spec.positionals.filter((p) => !p.optional).length;
    const variadic = spec.positionals.some((p) => p.variadic);
    if (positionals.length < required) {
      throw usageError(`${spec.name}: missing ${spec.positionals[positionals.length]!.name} (${hint})`);
    }
    if (!variadic && positionals.length > spec.positionals.length) {
      throw usageError(
        `${spec.name}: unexpected argument '${positionals[spec.positionals.length]}' (${hint})`,
      );
    }
  }
  return { values, positionals, rest, help };
}

export const str = (a: ParsedArgs, name: string): string | undefined => {
  const v = a.values.get(name);
  return typeof v === 'string' ? v : undefined;
};
export const flag = (a: ParsedArgs, name: string): boolean => a.values.get(name) === true;
export const list = (a: ParsedArgs, name: string): string[] =>
  (a.values.get(name) as string[] | undefined) ?? [];

/** A whole number in a range, or a usage error naming the option. */
export function intOption(a: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const text = str(a, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw usageError(`--${name} '${text}' must be a whole number from ${min} to ${max}`);
  return n;
}

export function formatHelp(spec: CommandSpec): string {
  const lines = [`Usage: vmstub ${spec.name} ${spec.usage}`.trimEnd(), '', spec.summary];
  if (spec.details) lines.push('', spec.details);
  const opts = [...spec.options, HELP];
  const left = opts.map((o) => {
    const names = (o.short ? `-${o.short}, ` : '    ') + `--${o.name}`;
    const v = o.valueName ?? 'VALUE';
    return names + (o.takes === 'value' ? ` ${v}` : o.takes === 'optional' ? `[=${v}]` : '');
  });
  const width = Math.max(...left.map((l) => l.length)) + 2;
  lines.push('', 'Options:');
  opts.forEach((o, i) =>
    lines.push(`  ${left[i]!.padEnd(width)}${o.help}${o.repeat ? ' (repeatable)' : ''}`),
  );
  return lines.join('\n') + '\n';
}
