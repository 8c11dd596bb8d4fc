import { createWriteStream } from 'node:fs';
import { buildProgram, HelpShown, inlineValueArgv, VERSION } from './program.js';
import { installSignalCleanup } from '../util/cleanup.js';
import { ExitCode, VmstubError, oneLine } from '../util/errors.js';
import type { LaunchInfo, SupervisorReport } from '../vm/launch.js';
import { supervise } from '../vm/supervisor.js';
import { EXEC_PLAN_COMMAND, execPlanFromDir } from '../installer/stub-root.js';

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
  const program = buildProgram();
  // A missing command is a usage error: help on stderr, exit 2 (as GNU tools do); asked for, help succeeds.
  if (argv.length === 0) {
    program.outputHelp({ error: true });
    return ExitCode.usage;
  }
  if (argv[0] === 'version') {
    process.stdout.write(`vmstub ${VERSION}\n`);
    return ExitCode.ok;
  }
  if (argv[0] === '__supervise') return runSupervisor(argv[1]!);
  installSignalCleanup((line) => process.stderr.write(line + '\n'));
  // In the stub's root for the host: interrupted, it ends its tools and unmounts before it exits.
  if (argv[0] === EXEC_PLAN_COMMAND) return execPlanFromDir(argv[1]!);
  try {
    await program.parseAsync(inlineValueArgv(program, argv), { from: 'user' });
  } catch (e) {
    if (e instanceof HelpShown) return e.exitCode;
    throw e;
  }
  return Number(process.exitCode ?? ExitCode.ok);
}

/** With --json, a failure is also one JSON object on stdout, so a reader of NDJSON sees how it ended. */
const wantsJson = (argv: string[]): boolean => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
};

// `vmstub list | head`, a closed terminal or a killed parent: a reader that goes away is no error, and
// what vmstub still does goes on unseen; above all the undoing after a signal, which writes as it goes.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof VmstubError;
    const message = known ? oneLine(err) : `internal error: ${oneLine(err)}`;
    const exitCode = known ? err.exitCode : ExitCode.failure;
    process.stderr.write(`vmstub: ${message}\n`);
    if (!known && process.env.VMSTUB_DEBUG) console.error(err);
    if (wantsJson(argv)) process.stdout.write(JSON.stringify({ type: 'error', message, exitCode }) + '\n');
    process.exitCode = exitCode;
  },
);
