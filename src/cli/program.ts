import { Command, type CommanderError, type Option } from '@commander-js/extra-typings';
import { bootCommands } from './boot-commands.js';
import { bootstrapCommands } from './bootstrap-commands.js';
import { diskCommands } from './disk-commands.js';
import { keyCommands } from './key-commands.js';
import { imageCommands } from './image-commands.js';
import { installCommands } from './install-commands.js';
import { describeOption, notesOf, optionFlags } from './options.js';
import { portCommands } from './port-commands.js';
import { serviceCommands } from './service-commands.js';
import { snapshotCommands } from './snapshot-commands.js';
import { toolCommands } from './tool-commands.js';
import { vmCommands } from './vm-commands.js';
import { ExitCode, VmstubError, usageError } from '../util/errors.js';

export const VERSION = '0.1.0';

/** Any command of the tree, whatever its options' types. */
export type AnyCommand = Command<unknown[], Record<string, unknown>, Record<string, unknown>>;

/** Help was asked for (exit 0), or shown because a command group was given without a command (exit 2). */
export class HelpShown extends Error {
  constructor(readonly exitCode: number) {
    super('help shown');
  }
}

/** `image build`: the words a user types after vmstub. */
export function commandPath(cmd: AnyCommand): string {
  const words: string[] = [];
  for (let c: AnyCommand | null = cmd; c?.parent; c = c.parent as AnyCommand | null) words.unshift(c.name());
  return words.join(' ');
}

const longFlag = (quoted: string) => /(--[\w-]+)/.exec(quoted)?.[1] ?? quoted;

/** Commander's error, said as vmstub says every usage error: one line, naming the command and its help. */
function usageFromCommander(err: CommanderError, cmd: AnyCommand): VmstubError {
  const path = commandPath(cmd);
  const message = err.message.replace(/^error: /, '');
  const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
  let text: string;
  switch (err.code) {
    case 'commander.unknownOption': {
      const hint = /Did you mean (\S+)\?/.exec(message)?.[1];
      text = `unknown option ${quoted}${hint ? ` (did you mean ${hint}?)` : ''}`;
      break;
    }
    case 'commander.unknownCommand':
      text = `unknown command '${quoted}'`;
      break;
    case 'commander.optionMissingArgument':
      text = `${longFlag(quoted)} needs a value`;
      break;
    case 'commander.missingArgument':
      text = `missing ${quoted}`;
      break;
    case 'commander.excessArguments':
      text = `unexpected argument '${cmd.args[cmd.registeredArguments.length] ?? ''}'`;
      break;
    case 'commander.invalidArgument': {
      const option = /option '([^']+)' argument '(.*)' is invalid\. Allowed choices are (.*)\.$/.exec(
        message,
      );
      const argument = /value '(.*)' is invalid for argument '([^']+)'\. Allowed choices are (.*)\.$/.exec(
        message,
      );
      text = option
        ? `${longFlag(option[1]!)} '${option[2]}' is not one of ${option[3]}`
        : argument
          ? `${argument[2]} '${argument[1]}' is not one of ${argument[3]}`
          : message.replace(/\s*\n\s*/g, ' ');
      break;
    }
    default:
      text = message.replace(/\s*\n\s*/g, ' ');
  }
  return usageError(`${path ? `${path}: ` : ''}${text} (see vmstub ${path ? `${path} ` : ''}--help)`);
}

/** What every command shares: errors as usage errors, help in one style, and options given once. */
function configure(cmd: AnyCommand): void {
  cmd
    .exitOverride((err) => {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version')
        throw new HelpShown(ExitCode.ok);
      // Asked for (vmstub help run) it succeeds; shown for a group given without a command, it is a usage error.
      if (err.code === 'commander.help')
        throw new HelpShown(err.exitCode === 0 ? ExitCode.ok : ExitCode.usage);
      throw usageFromCommander(err, cmd);
    })
    .configureOutput({ outputError: () => {} })
    .helpOption('-h, --help', 'show this help')
    .configureHelp({
      optionDescription: (o) => describeOption(o as Option),
      optionTerm: (o) => optionFlags(o as Option),
    });
  for (const option of cmd.options as readonly Option[]) {
    if (notesOf(option).repeatable) continue;
    let seen = false;
    cmd.on(`option:${option.name()}`, () => {
      if (seen) {
        const path = commandPath(cmd);
        throw usageError(`${path}: ${option.long ?? option.flags} given twice (see vmstub ${path} --help)`);
      }
      seen = true;
    });
  }
  if (cmd.parent && cmd.commands.length) cmd.helpCommand(false);
  for (const sub of cmd.commands) configure(sub as AnyCommand);
}

/** The whole command tree. Built per call: commander keeps parsed values on the commands. */
export function buildProgram(): AnyCommand {
  const program = new Command('vmstub')
    .usage('COMMAND [options]')
    .description('Any Linux distribution as a QEMU VM, installed from its own mirror by a disposable stub.')
    .version(`vmstub ${VERSION}`, '--version', 'print the version')
    .addHelpText(
      'after',
      "\nRun 'vmstub COMMAND --help' for a command's options. Documentation: docs/commands.md",
    )
    .helpCommand('help [COMMAND]', "show a command's help");
  // As `vmstub --help` groups them, in this order.
  const groups: [string, () => readonly unknown[]][] = [
    ['Installing:', installCommands],
    ['Running:', () => [...vmCommands(), ...portCommands(), ...serviceCommands()]],
    [
      'Disks and images:',
      () => [...diskCommands(), ...keyCommands(), ...snapshotCommands(), ...imageCommands()],
    ],
    ['Inside the stub, and on their own:', () => [...bootCommands(), ...bootstrapCommands()]],
    ['For editors and shells:', toolCommands],
  ];
  for (const [heading, commands] of groups)
    for (const c of commands()) program.addCommand((c as Command).helpGroup(heading));
  configure(program as unknown as AnyCommand);
  return program as unknown as AnyCommand;
}

/** Every command that runs something (leaves of the tree), depth first. */
export function leafCommands(cmd: AnyCommand): AnyCommand[] {
  return cmd.commands.length
    ? cmd.commands.flatMap((c) => leafCommands(c as AnyCommand))
    : cmd.parent
      ? [cmd]
      : [];
}

/**
 * `--wait-ssh NAME` must keep NAME as the positional (commander would take it as the option's value):
 * a bare flag whose value may only follow `=` is rewritten to `--flag=` before parsing.
 */
export function inlineValueArgv(program: AnyCommand, argv: readonly string[]): string[] {
  const inline = new Set<string>();
  const walk = (c: AnyCommand) => {
    for (const o of c.options as readonly Option[]) if (notesOf(o).inlineValue && o.long) inline.add(o.long);
    for (const s of c.commands) walk(s as AnyCommand);
  };
  walk(program);
  const end = argv.indexOf('--');
  return argv.map((a, i) => ((end < 0 || i < end) && inline.has(a) ? `${a}=` : a));
}
