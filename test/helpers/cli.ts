import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testCacheDir } from './fixture.js';

/** The bundled CLI, as users run it. */
export const VMSTUB = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'vmstub.cjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** An isolated vmstub home (instances) sharing the machine-wide test cache (kernels, probes). */
export class Sandbox {
  readonly home = mkdtempSync(join(tmpdir(), 'vmstub-home-'));
  readonly env: NodeJS.ProcessEnv = {
    ...process.env,
    VMSTUB_HOME: this.home,
    VMSTUB_CACHE: join(testCacheDir(), 'vmstub-cache'),
  };

  run(args: string[], opts: { input?: string; timeoutMs?: number; cwd?: string } = {}): CliResult {
    const r = spawnSync(process.execPath, [VMSTUB, ...args], {
      env: this.env,
      input: opts.input,
      timeout: opts.timeoutMs ?? 120_000,
      encoding: 'utf8',
      cwd: opts.cwd,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  runAsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<CliResult> {
    return new Promise((resolvePromise) => {
      const child = spawn(process.execPath, [VMSTUB, ...args], {
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolvePromise({ code, stdout, stderr });
      });
    });
  }

  /**
   * Starts a command and sends it a signal once its output has matched a pattern (and delayMs more):
   * how the interruption tests kill a command at a chosen point.
   */
  async runAndKill(
    args: string[],
    at: RegExp,
    signal: NodeJS.Signals,
    o: {
      delayMs?: number;
      timeoutMs?: number;
      /** Close the pipes vmstub writes to first, as a closed terminal or a killed parent would. */
      readerGone?: boolean;
    } = {},
  ): Promise<CliResult & { killedAt: string | undefined }> {
    const child = spawn(process.execPath, [VMSTUB, ...args], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let killedAt: string | undefined;
    const watch = () => {
      const m = at.exec(stdout + stderr);
      if (m && killedAt === undefined) {
        killedAt = m[0];
        if (o.readerGone) {
          child.stdout.destroy();
          child.stderr.destroy();
        }
        setTimeout(() => child.kill(signal), o.delayMs ?? 0);
      }
    };
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), watch()));
    child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), watch()));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 600_000);
    const code = await new Promise<number | null>((r) =>
      child.on('close', (c, sig) => r(c ?? (sig ? 128 + (osConstants.signals[sig] ?? 0) : null))),
    );
    clearTimeout(timer);
    return { code, stdout, stderr, killedAt };
  }

  instanceDir(name: string): string {
    return join(this.home, 'instances', name);
  }

  consoleLog(name: string): string {
    const f = join(this.instanceDir(name), 'console.log');
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  /**
   * Waits until the instance's console shows text; a timeout names what was awaited and quotes the
   * console's last lines, so a guest that hung says where.
   */
  async waitForConsole(name: string, what: string, text: string, timeoutMs: number): Promise<void> {
    try {
      await waitFor(what, () => this.consoleLog(name).includes(text), timeoutMs);
    } catch (e) {
      const tail = this.consoleLog(name).split('\n').slice(-25).join('\n');
      throw new Error(`${(e as Error).message}; ${name}'s console ended with:\n${tail}`, { cause: e });
    }
  }

  /** A command run as root in an instance through vmstub ssh: its stdout; a failure fails the test. */
  sshRoot(name: string, command: string[], timeoutMs = 120_000): string {
    const r = this.run(['ssh', '--user', 'root', name, '--', ...command], { timeoutMs });
    assert.equal(r.code, 0, `ssh ${name}: ${command.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  /** Stops every instance left running and deletes the home. */
  cleanup(): void {
    const list = this.run(['list', '--json']);
    if (list.code === 0) {
      for (const i of JSON.parse(list.stdout) as { name: string; state: string }[]) {
        if (i.state === 'running') this.run(['stop', '--force', i.name]);
      }
    }
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** The last line vmstub printed on stderr: a failure's one line that must say it all. */
export const lastVmstubLine = (stderr: string): string =>
  stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('vmstub:'))
    .pop() ?? '';

/** Polls until the predicate holds; fails with the description after the timeout. */
export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | false,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Whether a process has ended: gone, or a zombie only waiting to be reaped (its parent may be held). */
export function processEnded(pid: number | string): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] === 'Z';
  } catch {
    return true;
  }
}

/** Processes that run inside dir (their root or working directory) or name it on their command line. */
export function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const root = readlinkSync(`/proc/${pid}/root`);
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (processEnded(pid)) continue;
      if (root.startsWith(dir) || cwd.startsWith(dir) || cmdline.includes(dir))
        found.push(`${pid} ${cmdline.trim()}`);
    } catch {
      // gone meanwhile, or not ours to look at
    }
  }
  return found;
}

/** The mount points at or below dir, innermost first (vmstub's own reading of mountinfo). */
import { mountsUnder } from '../../src/util/mounts.js';
export { mountsUnder };

/** Nothing of an interrupted command may be left: no mount, no process, under dir. */
export async function assertNothingLeft(dir: string, what: string): Promise<void> {
  await waitFor(
    `${what}: processes under ${dir} to end`,
    () => processesUsing(dir).length === 0,
    15_000,
  ).catch(() => {
    assert.fail(`${what}: still running under ${dir}: ${processesUsing(dir).join('; ')}`);
  });
  assert.deepEqual(mountsUnder(dir), [], `${what}: mounts left under ${dir}`);
}

/**
 * An installed instance stopped and started again: a new boot, through the stub's handoff, reached
 * by SSH. What the creates of every family check after their first login.
 */
export function assertBootsAgain(box: Sandbox, name: string): void {
  const bootId = box.sshRoot(name, ['cat', '/proc/sys/kernel/random/boot_id']).trim();
  assert.equal(box.run(['stop', name], { timeoutMs: 300_000 }).code, 0);
  const r = box.run(['start', '--wait-ssh=600', name], { timeoutMs: 660_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.notEqual(box.sshRoot(name, ['cat', '/proc/sys/kernel/random/boot_id']).trim(), bootId, 'a new boot');
  assert.match(box.consoleLog(name), /vmstub-handoff: handing over/);
}
