import { Option } from '@commander-js/extra-typings';
import { usageError } from '../util/errors.js';

/**
 * What commander does not know about an option, kept beside it: how its default reads in help and docs
 * when the value comes from elsewhere (a spec file, the host), whether it may be given more than once,
 * and whether its value may only follow `=` (so `--wait-ssh NAME` keeps NAME as the positional).
 */
interface OptionNotes {
  defaultText?: string;
  repeatable?: boolean;
  inlineValue?: boolean;
  /** Sets an install spec field: documented in the spec's field table, not in each command's. */
  specField?: string;
}
const NOTES = new WeakMap<Option, OptionNotes>();

export const notesOf = (o: Option): OptionNotes => NOTES.get(o as unknown as Option) ?? {};

/** Records what help, docs and the parser's checks need to know about an option; returns it for chaining. */
export function annotate<T extends object>(option: T, notes: OptionNotes): T {
  NOTES.set(option as unknown as Option, { ...notesOf(option as unknown as Option), ...notes });
  return option;
}

/** A whole number in a range; the message names the option. */
export const wholeNumber =
  (flag: string, min: number, max: number) =>
  (text: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max)
      throw usageError(`${flag} '${text}' must be a whole number from ${min} to ${max}`);
    return n;
  };

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** An option that may be given many times; its values arrive as a list, in order. */
export function repeatable<F extends string>(flags: F, description: string) {
  return annotate(new Option(flags, description).argParser(collect), { repeatable: true });
}

/** The one help line of an option: its description, then its default, choices, env var and repeatability. */
export function describeOption(o: Option): string {
  const notes = notesOf(o);
  const extra: string[] = [];
  const shownDefault =
    notes.defaultText ??
    (o.defaultValue !== undefined && typeof o.defaultValue !== 'boolean'
      ? (o.defaultValueDescription ?? String(o.defaultValue))
      : undefined);
  if (o.argChoices) extra.push(`one of ${o.argChoices.join(', ')}`);
  if (shownDefault !== undefined) extra.push(`default ${shownDefault}`);
  if (o.envVar) extra.push(`env ${o.envVar}`);
  if (notes.repeatable) extra.push('repeatable');
  return extra.length ? `${o.description} (${extra.join('; ')})` : o.description;
}

/** Flags as a user types them: `--wait-ssh[=SECONDS]` for a value that may only follow `=`. */
export function optionFlags(o: Option): string {
  if (!notesOf(o).inlineValue) return o.flags;
  return o.flags.replace(/ \[(\w+)\]$/, '[=$1]');
}

export const jsonOption = (description = 'machine-readable output') => new Option('--json', description);

export const stubOption = () =>
  new Option(
    '--stub',
    'this boot only: stay in the stub even when a system is installed (vmstub.nokexec), for repair',
  );

const WAIT_SSH_DEFAULT_SEC = 120;

export const waitSshOption = () =>
  annotate(
    new Option(
      '--wait-ssh [SECONDS]',
      'wait until the guest answers with an SSH banner on the forwarded port (exit 4 if it does not)',
    )
      .preset('')
      .argParser((text) => (text === '' ? WAIT_SSH_DEFAULT_SEC : wholeNumber('--wait-ssh', 1, 86_400)(text))),
    { inlineValue: true, defaultText: `${WAIT_SSH_DEFAULT_SEC} s when given without a value` },
  );
