import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { onCleanup } from './cleanup.js';
import { VmstubError } from './errors.js';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the command's process group when vmstub itself dies, even by SIGKILL (long host-side tools). */
  killWithParent?: boolean;
  /** Each line of standard error as it comes (progress), besides collecting it. */
  onStderrLine?: (line: string) => void;
}

/** How long a child group gets between SIGTERM and SIGKILL when vmstub undoes it. */
const TERM_GRACE_MS = 5000;

function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * A watchdog for when vmstub is killed outright: a detached shell that waits for vmstub's pid to go
 * (coreutils tail --pid) and then kills the child's whole process group. Ended when the child is.
 */
function startWatchdog(groupPid: number): ChildProcess | undefined {
  const tail = which('tail');
  if (!tail) return undefined;
  const dog = spawn(
    '/bin/sh',
    [
      '-c',
      `"$0" --pid="$1" -f /dev/null >/dev/null 2>&1; kill -KILL -"$2" 2>/dev/null`,
      tail,
      String(process.pid),
      String(groupPid),
    ],
    { detached: true, stdio: 'ignore' },
  );
  dog.on('error', () => {});
  dog.unref();
  return dog;
}

/**
 * Spawns a command in a process group of its own and registers it with the cleanup stack: an
 * interrupted vmstub ends the whole group (SIGTERM, then SIGKILL) instead of leaving it running.
 */
export function spawnTracked(
  cmd: string,
  args: readonly string[],
  options: SpawnOptions,
  killWithParent = false,
): ChildProcess {
  const child = spawn(cmd, args, { ...options, detached: true });
  const pid = child.pid;
  if (pid === undefined) return child; // spawn failed; the child's 'error' event says why
  const dog = killWithParent ? startWatchdog(pid) : undefined;
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const registration = onCleanup(`${cmd.split('/').pop()} (pid ${pid})`, async () => {
    if (!signalGroup(pid, 'SIGTERM')) return;
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), TERM_GRACE_MS).unref()),
    ]);
    // Whatever the leader did, nothing of its group may outlive the cleanup.
    signalGroup(pid, 'SIGKILL');
    if (!gone) await exited;
  });
  child.once('close', () => {
    registration.release();
    if (dog?.pid) signalGroup(dog.pid, 'SIGKILL');
  });
  return child;
}

const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Finds an executable on PATH (and the sbin directories, which a user's PATH often lacks). */
export function which(name: string, extraDirs: string[] = []): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN_DIRS, ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like which(), but a missing tool is a clear error naming the package that provides it. */
export function requireTool(name: string, debianPackage: string): string {
  const found = which(name);
  if (!found) {
    throw new VmstubError(`${name} not found; install it with: apt-get install ${debianPackage}`);
  }
  return found;
}

/** A tracked child with its output piped, and its input piped when there is input to give. */
function spawnPiped(
  cmd: string,
  args: readonly string[],
  opts: Pick<ExecOptions, 'input' | 'env' | 'cwd' | 'killWithParent'>,
): ChildProcess {
  return spawnTracked(
    cmd,
    args,
    {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    },
    opts.killWithParent,
  );
}

/** Runs a command to completion and collects its output. Never throws for a non-zero exit. */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawnPiped(cmd, args, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    let partial = '';
    child.stderr!.on('data', (d: Buffer) => {
      err.push(d);
      if (!opts.onStderrLine) return;
      const lines = (partial + d.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) opts.onStderrLine(l);
    });
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(
        () => signalGroup(child.pid ?? 0, 'SIGKILL') || child.kill('SIGKILL'),
        opts.timeoutMs,
      );
    }
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new VmstubError(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/**
 * Runs a command, handing each line of its output (stdout and stderr alike) to onLine as it comes: for
 * tools whose every line goes to a log. Resolves with how it ended and its last line; never throws for
 * a non-zero exit.
 */
export function runLines(
  cmd: string,
  args: readonly string[],
  onLine: (line: string) => void,
  opts: Pick<ExecOptions, 'input' | 'env' | 'cwd' | 'killWithParent'> = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; last: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnPiped(cmd, args, opts);
    let last = '';
    const feed = (stream: NodeJS.ReadableStream) => {
      let buf = '';
      const emit = (line: string) => {
        if (!line.trim()) return;
        last = line;
        onLine(line);
      };
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          emit(buf.slice(0, nl).replace(/\r$/, ''));
          buf = buf.slice(nl + 1);
        }
      });
      stream.on('end', () => emit(buf));
    };
    feed(child.stdout!);
    feed(child.stderr!);
    child.on('error', (e) => reject(new VmstubError(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => resolve({ code, signal, last: last.trim() }));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** Runs a command and fails with its last line of stderr when it does not exit 0. */
export async function runChecked(
  cmd: string,
  args: readonly string[],
  opts: ExecOptions = {},
): Promise<Buffer> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new VmstubError(`${cmd} ${describeExit(r)}: ${lastLine(r.stderr) || '(no error output)'}`);
  }
  return r.stdout;
}

export function runSync(
  cmd: string,
  args: readonly string[],
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new VmstubError(`cannot run ${cmd}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function describeExit(r: { code: number | null; signal: NodeJS.Signals | null }): string {
  return r.signal ? `was killed by ${r.signal}` : `exited with status ${r.code}`;
}

export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? '';
}
