import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { findInstalledKernel, UNFINISHED_INSTALL_MARK } from '../boot/discover.js';
import { onCleanup, type Registration } from '../util/cleanup.js';
import { oneLine } from '../util/errors.js';
import { run, spawnTracked, which } from '../util/exec.js';
import { unmountUnder } from '../util/mounts.js';
import type { Action, Plan, Step } from './plan.js';
import { HOOKS, STAGING, TARGET } from './plan.js';
import { claimDirectory, clearUnfinished, releaseDirectory } from './directory-claim.js';
import { rpmBootstrap } from '../bootstrap/rpm/bootstrap.js';
import { installStage3 } from '../bootstrap/gentoo/stage3.js';

/** What the installer tells the host (over the events port) and the console, one object per line. */
export type InstallEvent =
  | { type: 'install-start'; distro: string; hostname: string; steps: { id: string; title: string }[] }
  | { type: 'step-start'; step: string; title: string; index: number; total: number }
  | { type: 'step-end'; step: string; seconds: number }
  | { type: 'progress'; step: string; phase: string; done?: number; total?: number }
  | { type: 'log'; step: string; line: string }
  | { type: 'install-done'; seconds: number; hostKeys: string[]; kernel: string; rootUuid?: string }
  | { type: 'install-failed'; step: string; reason: string; log: string };

export interface ExecuteOptions {
  emit: (e: InstallEvent) => void;
  /** The full log of every command, kept in the stub (and streamed as log events). */
  logFile: string;
  /** Where the target goes; the stub's default, or a directory on the host for tests and plain directories. */
  target?: string;
}

export interface InstallResult {
  target: string;
  rootUuid?: string;
  hostKeys: string[];
  kernel: string;
}

class InstallError extends Error {}

/** Turns dpkg's and the bootstrap tools' output into progress: phases, and packages set up so far. */
export class BootstrapProgress {
  private total: number | undefined;
  private setUp = 0;

  constructor(private readonly emit: (p: { phase: string; done?: number; total?: number }) => void) {}

  line(text: string): void {
    const phase = /^I: (.+?)\.{3}/.exec(text)?.[1];
    if (phase) this.emit({ phase });
    const counted = /(\d+) newly installed/.exec(text);
    if (counted) this.total = Number(counted[1]);
    if (/^Setting up \S+/.test(text)) {
      this.setUp++;
      this.emit({ phase: 'setting up packages', done: this.setUp, total: this.total });
    }
  }
}

/** Runs one command, feeding each line of its output to onLine; fails with its last line. */
function exec(
  argv: string[],
  onLine: (l: string) => void,
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnTracked(
      which(argv[0]!) ?? argv[0]!,
      argv.slice(1),
      {
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...opts.env },
      },
      true,
    );
    let last = '';
    const feed = (stream: NodeJS.ReadableStream) => {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, '');
          buf = buf.slice(nl + 1);
          if (line.trim()) {
            last = line;
            onLine(line);
          }
        }
      });
      stream.on('end', () => {
        if (buf.trim()) {
          last = buf;
          onLine(buf);
        }
      });
    };
    feed(child.stdout!);
    feed(child.stderr!);
    child.on('error', (e) => reject(new InstallError(`cannot run ${argv[0]}: ${e.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new InstallError(
            `${argv[0]} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}: ${last.trim()}`,
          ),
        );
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** Is anything on this disk? blkid finds filesystems, LUKS, RAID members and partition tables. */
async function diskSignature(device: string): Promise<string | undefined> {
  const r = await run(which('blkid') ?? 'blkid', ['-p', '-o', 'export', device]);
  const out = r.stdout.toString('utf8');
  const type = /^TYPE=(.*)$/m.exec(out)?.[1];
  const pt = /^PTTYPE=(.*)$/m.exec(out)?.[1];
  return type ?? (pt ? `a ${pt} partition table` : undefined);
}

/**
 * Runs a plan on the target: each step's actions in order, each command logged, every mount undone at
 * the end, also when a step fails. Throws (after the failure event) naming the failed step.
 */
export async function executePlan(plan: Plan, o: ExecuteOptions): Promise<InstallResult> {
  const target = o.target ?? TARGET;
  const vars: Record<string, string> = {};
  // Whatever a killed bootstrap tool left mounted inside the target goes when the install ends, however.
  const cleanups: Registration[] = [
    onCleanup(`mounts under ${target}`, () => unmountUnder(target).then(() => {})),
  ];
  const started = Date.now();
  mkdirSync(dirname(o.logFile), { recursive: true });
  writeFileSync(o.logFile, '');
  const log = (step: string, line: string) => {
    writeFileSync(o.logFile, `[${step}] ${line}\n`, { flag: 'a' });
    o.emit({ type: 'log', step, line });
  };
  const inTarget = (p: string) => join(target, p);
  const substitute = (s: string) => s.replace(/\{\{(\w+)\}\}/g, (m, k: string) => vars[k] ?? m);
  let chrootMounted = false;

  const runAction = async (step: Step, a: Action): Promise<void> => {
    switch (a.kind) {
      case 'exec': {
        const progress =
          a.progress === 'bootstrap'
            ? new BootstrapProgress((p) => o.emit({ type: 'progress', step: step.id, ...p }))
            : undefined;
        const argv = a.chroot
          ? ['chroot', target, ...a.argv]
          : a.argv.map((x) => (x === TARGET ? target : x));
        log(step.id, `$ ${argv.join(' ')}`);
        await exec(
          argv,
          (l) => {
            log(step.id, l);
            progress?.line(l);
          },
          { input: a.input, env: a.env },
        );
        return;
      }
      case 'write': {
        const path =
          a.in === 'staging'
            ? join(STAGING, a.path)
            : a.in === 'hooks'
              ? join(HOOKS, a.path)
              : inTarget(a.path);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, substitute(a.content), { mode: a.mode ?? 0o644 });
        if (a.owner) {
          const ids = await ownerIds(target, a.owner);
          chownSync(dirname(path), ids.uid, ids.gid);
          chownSync(path, ids.uid, ids.gid);
        }
        log(step.id, `wrote ${a.path}`);
        return;
      }
      case 'symlink': {
        const path = inTarget(a.path);
        rmSync(path, { force: true });
        symlinkSync(a.target, path);
        log(step.id, `linked ${a.path} -> ${a.target}`);
        return;
      }
      case 'remove': {
        rmSync(inTarget(a.path), { recursive: true, force: true });
        log(step.id, `removed ${a.path}`);
        return;
      }
      case 'rpm-bootstrap': {
        // Downloads are kept inside the target while installing (the stub's memory is small), then dropped.
        const cacheDir = inTarget('/var/tmp/vmstub-rpm-bootstrap');
        await rpmBootstrap({
          repos: a.repos,
          arch: plan.spec.arch,
          packages: a.packages,
          root: target,
          dbpath: a.dbpath,
          keys: a.keys,
          keysFromFirstPackage: a.keysFromFirstPackage,
          cacheDir,
          log: (l) => log(step.id, l),
        });
        rmSync(cacheDir, { recursive: true, force: true });
        return;
      }
      case 'gentoo-stage3': {
        const cacheDir = inTarget('/var/tmp/vmstub-stage3');
        const { tarball } = await installStage3({
          ...a,
          root: target,
          cacheDir,
          log: (l) => log(step.id, l),
        });
        rmSync(tarball, { force: true });
        rmSync(cacheDir, { recursive: true, force: true });
        return;
      }
      case 'copy-in': {
        mkdirSync(dirname(inTarget(a.path)), { recursive: true });
        copyFileSync(a.from, inTarget(a.path));
        return;
      }
      case 'check-blank': {
        if (!existsSync(a.device))
          throw new InstallError(`there is no data disk (${a.device}); run the stub with --data DISK`);
        const found = await diskSignature(a.device);
        if (found && !a.wipe && !a.startOver)
          throw new InstallError(`the data disk holds ${found}; refusing to format it without --wipe`);
        if (found && a.startOver)
          log(step.id, `the data disk holds ${found}, left by the unfinished install; starting over`);
        else if (found) log(step.id, `the data disk holds ${found}; wiping it as asked`);
        return;
      }
      case 'check-empty-target': {
        const directory = plan.spec.target === 'directory';
        if (directory) {
          const cleared = await clearUnfinished(target);
          if (cleared) log(step.id, cleared);
        }
        const entries = existsSync(target) ? readdirSync(target).filter((e) => e !== 'lost+found') : [];
        if (entries.length)
          throw new InstallError(
            `the target is not empty (${entries.slice(0, 3).join(', ')}...); vmstub installs only into an empty one`,
          );
        if (directory) claimDirectory(target);
        return;
      }
      case 'mount': {
        mkdirSync(target, { recursive: true });
        log(step.id, `$ mount -t ${a.fstype} ${a.source} ${target}`);
        await exec(
          ['mount', '-t', a.fstype, ...(a.options ? ['-o', a.options] : []), a.source, target],
          (l) => log(step.id, l),
        );
        cleanups.push(
          onCleanup(`unmount ${target}`, async () => {
            // What the bootstrap tool mounted inside and left (it was killed) goes first.
            await unmountUnder(target);
          }),
        );
        return;
      }
      case 'read-uuid': {
        const r = await run(which('blkid') ?? 'blkid', ['-p', '-s', 'UUID', '-o', 'value', a.device]);
        vars.ROOT_UUID = r.stdout.toString('utf8').trim();
        if (!vars.ROOT_UUID) throw new InstallError(`cannot read the filesystem UUID of ${a.device}`);
        log(step.id, `root filesystem UUID ${vars.ROOT_UUID}`);
        return;
      }
      case 'chroot-mounts': {
        if (chrootMounted) return;
        for (const [fs, type] of [
          ['proc', 'proc'],
          ['sys', 'sysfs'],
          ['dev', 'devtmpfs'],
          ['dev/pts', 'devpts'],
          ['run', 'tmpfs'],
        ] as const) {
          mkdirSync(inTarget(fs), { recursive: true });
          await exec(['mount', '-t', type, type === 'devpts' ? 'devpts' : fs, inTarget(fs)], (l) =>
            log(step.id, l),
          );
          cleanups.push(
            onCleanup(`unmount ${inTarget(fs)}`, async () => {
              await run(which('umount') ?? 'umount', ['-l', inTarget(fs)]);
            }),
          );
        }
        chrootMounted = true;
        return;
      }
      case 'verify-boot': {
        const k = findInstalledKernel(target);
        if (!k) throw new InstallError('no kernel where the boot handoff looks (/boot/vmlinuz-*, /vmlinuz)');
        if (!k.initrds.length) throw new InstallError(`${k.name} has no initramfs`);
        vars.KERNEL = k.kernel.slice(target.length);
        log(
          step.id,
          `kernel ${vars.KERNEL}, initramfs ${k.initrds.map((p) => p.slice(target.length)).join(' ')}`,
        );
        return;
      }
      case 'collect-host-keys': {
        const dir = inTarget('/etc/ssh');
        const keys = readdirSync(dir)
          .filter((f) => /^ssh_host_\w+_key\.pub$/.test(f))
          .sort()
          .map((f) => readFileSync(join(dir, f), 'utf8').trim().split(/\s+/).slice(0, 2).join(' '));
        if (!keys.length) throw new InstallError('the new system has no SSH host keys');
        vars.HOST_KEYS = JSON.stringify(keys);
        return;
      }
    }
  };

  o.emit({
    type: 'install-start',
    distro: plan.distro.id,
    hostname: plan.spec.hostname,
    steps: plan.steps.map((s) => ({ id: s.id, title: s.title })),
  });
  for (const dir of [STAGING, HOOKS]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  let current: Step | undefined;
  try {
    for (const [i, step] of plan.steps.entries()) {
      current = step;
      const t = Date.now();
      o.emit({
        type: 'step-start',
        step: step.id,
        title: step.title,
        index: i + 1,
        total: plan.steps.length,
      });
      for (const a of step.actions) await runAction(step, a);
      markUnfinished(target);
      o.emit({ type: 'step-end', step: step.id, seconds: Math.round((Date.now() - t) / 100) / 10 });
    }
  } catch (e) {
    const reason = oneLine(e);
    log(current?.id ?? 'start', `FAILED: ${reason}`);
    await undo(cleanups);
    o.emit({ type: 'install-failed', step: current?.id ?? 'start', reason, log: o.logFile });
    throw new InstallFailure(current?.id ?? 'start', reason);
  }
  rmSync(inTarget(UNFINISHED_INSTALL_MARK), { force: true });
  await undo(cleanups);
  if (plan.spec.target === 'directory') releaseDirectory(target);
  const hostKeys = JSON.parse(vars.HOST_KEYS ?? '[]') as string[];
  o.emit({
    type: 'install-done',
    seconds: Math.round((Date.now() - started) / 1000),
    hostKeys,
    kernel: vars.KERNEL ?? '',
    rootUuid: vars.ROOT_UUID,
  });
  return { target, rootUuid: vars.ROOT_UUID, hostKeys, kernel: vars.KERNEL ?? '' };
}

/**
 * Marks the target as an unfinished install as soon as a step has put anything into it (the bootstrap
 * tools want an empty root, so not before): until the last step removes the mark, the boot handoff
 * will not start it.
 */
function markUnfinished(target: string): void {
  const mark = join(target, UNFINISHED_INSTALL_MARK);
  if (!existsSync(target) || existsSync(mark)) return;
  if (readdirSync(target).some((e) => e !== 'lost+found'))
    writeFileSync(mark, 'vmstub: this install has not finished\n');
}

export class InstallFailure extends Error {
  constructor(
    readonly step: string,
    readonly reason: string,
  ) {
    super(`install failed at step ${step}: ${reason}`);
  }
}

/** Undoes mounts innermost first; a failure to undo one does not stop the others. */
async function undo(cleanups: Registration[]): Promise<void> {
  while (cleanups.length) {
    try {
      await cleanups.pop()!.undo();
    } catch {
      // keep going: the rest must still be undone
    }
  }
}

async function ownerIds(target: string, user: string): Promise<{ uid: number; gid: number }> {
  const line = readFileSync(join(target, 'etc/passwd'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) throw new InstallError(`user ${user} does not exist in the new system`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}
