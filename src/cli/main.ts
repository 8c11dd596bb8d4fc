import { createWriteStream } from 'node:fs';
import { formatHelp, parseArgs } from './args.js';
import { diskCommands } from './disk-commands.js';
import { bootCommands } from './boot-commands.js';
import { bootstrapCommands } from './bootstrap-commands.js';
import { imageCommands } from './image-commands.js';
import { installCommands } from './install-commands.js';
import { vmCommands, type Command } from './vm-commands.js';
import { installSignalCleanup } from '../util/cleanup.js';
import { ExitCode, VmstubError, oneLine } from '../util/errors.js';
import type { LaunchInfo, SupervisorReport } from '../vm/launch.js';
import { supervise } from '../vm/supervisor.js';

const VERSION = '0.1.0';

const commands: Command[] = [
  ...installCommands,
  ...vmCommands,
  ...diskCommands,
  ...imageCommands,
  ...bootCommands,
  ...bootstrapCommands,
];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.spec.name.length)) + 2;
  return [
    'Usage: vmstub COMMAND [options]',
    '',
    'Any Linux distribution as a QEMU VM, installed from its own mirror by a disposable stub.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.spec.name.padEnd(width)}${c.spec.summary}`),
    '',
    "Run 'vmstub COMMAND --help' for a command's options. Documentation: docs/commands.md",
    '',
  ].join('\n');
}

/** The hidden command a started VM runs as: the supervisor, reporting to its starter on fd 3. */
async function runSupervisor(name: string): Promise<number> {
  process.title = `vmstub-supervisor ${name}`;
  // Everything the supervisor creates (console socket, logs, state) is for the owner only.
  process.umask(0o077);
  const launch = JSON.parse(process.env.VMSTUB_LAUNCH ?? 'null') as LaunchInfo | null;
  if (!launch) throw new VmstubError('__supervise is started by vmstub itself', ExitCode.usage);
  const channel = createWriteStream('', { fd: 3 });
  channel.on('error', () => {});
  let open = true;
  const report = (r: SupervisorReport) => {
    if (!open) return;
    open = false;
    channel.end(JSON.stringify(r) + '\n');
  };
  await supervise(name, launch, report);
  return ExitCode.ok;
}

async function main(argv: string[]): Promise<number> {
  const [word, ...rest] = argv;
  // Asked for, help goes to stdout and succeeds; a missing command is a usage error: stderr, exit 2 (as GNU tools do).
  if (word === undefined) {
    process.stderr.write(usage());
    return ExitCode.usage;
  }
  if (word === 'help' || word === '--help' || word === '-h') {
    process.stdout.write(usage());
    return ExitCode.ok;
  }
  if (word === '--version' || word === 'version') {
    process.stdout.write(`vmstub ${VERSION}\n`);
    return ExitCode.ok;
  }
  if (word === '__supervise') return runSupervisor(rest[0]!);
  installSignalCleanup((line) => process.stderr.write(line + '\n'));
  // Commands are one word (run) or two (image build).
  const command =
    commands.find((c) => c.spec.name === word) ?? commands.find((c) => c.spec.name === `${word} ${rest[0]}`);
  if (!command) throw new VmstubError(`unknown command '${word}' (see vmstub --help)`, ExitCode.usage);
  const args = parseArgs(command.spec, command.spec.name.includes(' ') ? rest.slice(1) : rest);
  if (args.help) {
    process.stdout.write(formatHelp(command.spec));
    return ExitCode.ok;
  }
  return command.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof VmstubError) {
      process.stderr.write(`vmstub: ${oneLine(err)}\n`);
      process.exitCode = err.exitCode;
    } else {
      process.stderr.write(`vmstub: internal error: ${oneLine(err)}\n`);
      if (process.env.VMSTUB_DEBUG) console.error(err);
      process.exitCode = ExitCode.failure;
    }
  },
);
