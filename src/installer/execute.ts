import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { findInstalledKernel, UNFINISHED_INSTALL_MARK } from '../boot/discover.js';
import { onCleanup, type Registration } from '../util/cleanup.js';
import { oneLine } from '../util/errors.js';
import { run, runLines, which } from '../util/exec.js';
import { mountsUnder, unmountUnder } from '../util/mounts.js';
import { diskFullNote, filledUp, type FilesystemSpace } from './disk-space.js';
import type { Action, Plan, RootAction, Step } from './plan/index.js';
import {
  HOOKS,
  LUKS_FORMAT_OPTIONS,
  LUKS_KEYSLOT_OPTIONS,
  LUKS_MAPPING,
  STAGING,
  TARGET,
  chroot,
} from './plan/index.js';
import { FW_CFG_ITEMS, fwCfgGuestPath } from '../events/protocol.js';
import type { InstallEvent } from '../events/protocol.js';
import { claimDirectory, clearUnfinished, releaseDirectory } from './directory-claim.js';
import { rpmBootstrap } from '../bootstrap/rpm/bootstrap.js';
import { installStage3 } from '../bootstrap/gentoo/stage3.js';

export type { InstallEvent };

export interface ExecuteOptions {
  emit: (e: InstallEvent) => void;
  /** The full log of every command, kept in the stub (and streamed as log events). */
  logFile: string;
  /** Where the target goes; the stub's default, or a directory on the host for tests and plain directories. */
  target?: string;
  /** Where staged files and the bootstrap's hooks go instead of the stub's STAGING and HOOKS (on the host). */
  staging?: string;
  hooks?: string;
  /**
   * vmstub's package cache, as an http proxy URL, for every download of this install: given to the
   * commands as http_proxy and to vmstub's own downloads. It is not written into the target.
   */
  downloadProxy?: string;
  /** SSH host keys the host made for this system, by file name under /etc/ssh (the host-keys action). */
  hostKeys?: Record<string, string>;
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
async function exec(
  argv: string[],
  onLine: (l: string) => void,
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<void> {
  let r: Awaited<ReturnType<typeof runLines>>;
  try {
    r = await runLines(which(argv[0]!) ?? argv[0]!, argv.slice(1), onLine, {
      input: opts.input,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...opts.env },
      killWithParent: true,
    });
  } catch (e) {
    throw new InstallError((e as Error).message);
  }
  if (r.code !== 0)
    throw new InstallError(
      `${argv[0]} ${r.signal ? `was killed by ${r.signal}` : `exited with status ${r.code}`}: ${r.last}`,
    );
}

/** Is anything on this disk? blkid finds filesystems, LUKS, RAID members and partition tables. */
async function diskSignature(device: string): Promise<string | undefined> {
  const r = await run(which('blkid') ?? 'blkid', ['-p', '-o', 'export', device]);
  const out = r.stdout.toString('utf8');
  const type = /^TYPE=(.*)$/m.exec(out)?.[1];
  const pt = /^PTTYPE=(.*)$/m.exec(out)?.[1];
  return type ?? (pt ? `a ${pt} partition table` : undefined);
}

/** A passphrase of the encrypted root, as the host gave it (fw_cfg); never read into a log. */
function luksKeyFile(item: 'luksPassphrase' | 'luksSourcePassphrase' = 'luksPassphrase'): string {
  const file = fwCfgGuestPath(item);
  if (!existsSync(file))
    throw new InstallError(
      `the root is encrypted, and the host gave no passphrase (fw_cfg ${FW_CFG_ITEMS[item]})`,
    );
  return file;
}

/** Opens the container as LUKS_MAPPING, closed again when the install ends. */
async function openLuks(device: string, key: string, cx: ExecContext): Promise<void> {
  cx.log(`$ cryptsetup open ${device} ${LUKS_MAPPING}`);
  await exec(['cryptsetup', 'open', `--key-file=${key}`, device, LUKS_MAPPING], (l) => cx.log(l));
  cx.cleanups.push(
    onCleanup(`close ${LUKS_MAPPING}`, async () => {
      await run(which('cryptsetup') ?? 'cryptsetup', ['close', LUKS_MAPPING]);
    }),
  );
}

/** What the plain actions (commands, writes, links, removals) need: a target, and where to log. */
interface ActionContext {
  step: Step;
  /** Where the target is, here: the stub's mount point, or a directory (install --target-dir). */
  target: string;
  /** The stub's staging and hooks directories (or the host's for a bootstrap there): an install's alone. */
  staging?: string;
  hooks?: string;
  inTarget: (path: string) => string;
  substitute: (text: string) => string;
  /** What every command's environment gets for its downloads (http_proxy, when there is a package cache). */
  downloadEnv: Record<string, string>;
  log: (line: string) => void;
  emit: (e: InstallEvent) => void;
}

/** What the actions of one install share while they run. */
interface ExecContext extends ActionContext {
  plan: Plan;
  staging: string;
  hooks: string;
  /** Values learnt while installing ({{ROOT_UUID}}), filled into file contents. */
  vars: Record<string, string>;
  /** Undone when the install ends, innermost first, whatever happens. */
  cleanups: Registration[];
  state: { chrootMounted: boolean };
  hostKeys?: Record<string, string>;
}

type Runners<A extends Action, C> = {
  [K in A['kind']]: (a: Extract<A, { kind: K }>, cx: C) => Promise<void>;
};

const RUN_ON_ROOT: Runners<RootAction, ActionContext> = {
  exec: async (a, cx) => {
    const progress =
      a.progress === 'bootstrap'
        ? new BootstrapProgress((p) => cx.emit({ type: 'progress', step: cx.step.id, ...p }))
        : undefined;
    const argv = a.chroot ? ['chroot', cx.target, ...a.argv] : a.argv.map((x) => relocate(x, cx));
    cx.log(`$ ${argv.join(' ')}`);
    await exec(
      argv,
      (l) => {
        cx.log(l);
        progress?.line(l);
      },
      { input: a.input, env: { ...cx.downloadEnv, ...a.env } },
    );
  },
  write: async (a, cx) => {
    const dir = a.in === 'staging' ? cx.staging : a.in === 'hooks' ? cx.hooks : cx.target;
    if (dir === undefined)
      throw new InstallError(`${a.path}: there is no ${a.in} directory outside an install`);
    const path = join(dir, a.path);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, cx.substitute(a.content), { mode: a.mode ?? 0o644 });
    if (a.owner) {
      const ids = await ownerIds(cx.target, a.owner);
      chownSync(dirname(path), ids.uid, ids.gid);
      chownSync(path, ids.uid, ids.gid);
    }
    cx.log(`wrote ${a.path}`);
  },
  symlink: async (a, cx) => {
    const path = cx.inTarget(a.path);
    rmSync(path, { force: true });
    symlinkSync(a.target, path);
    cx.log(`linked ${a.path} -> ${a.target}`);
  },
  remove: async (a, cx) => {
    rmSync(cx.inTarget(a.path), { recursive: true, force: true });
    cx.log(`removed ${a.path}`);
  },
};

/**
 * Carries out plain actions on a root directory outside an install: the image builder's root gets
 * the accounts, host name, network and identity files an installed system of the same spec gets.
 */
export async function applyToRoot(
  actions: RootAction[],
  target: string,
  log: (line: string) => void,
): Promise<void> {
  const cx: ActionContext = {
    step: { id: 'root', title: 'Configure the root', actions },
    target,
    inTarget: (p) => join(target, p),
    substitute: (s) => s,
    downloadEnv: {},
    log,
    emit: () => {},
  };
  for (const a of actions)
    await (RUN_ON_ROOT[a.kind] as (a: RootAction, cx: ActionContext) => Promise<void>)(a, cx);
}

/** How each kind of action is carried out; a new kind that is not handled here does not compile. */
const RUN: Runners<Action, ExecContext> = {
  ...RUN_ON_ROOT,
  'put-file': async (a, cx) => {
    // Inside the chroot, so the path's symlinks resolve in the new system (its /var/run is /run), not the stub.
    const script =
      'mkdir -p -- "$(dirname -- "$1")" && base64 -d ' +
      (a.append ? '>>' : '>') +
      ' "$1" && chown -- "$2" "$1" && chmod -- "$3" "$1"';
    const owner = a.owner.includes(':') ? a.owner : `${a.owner}:`;
    await exec(
      ['chroot', cx.target, '/bin/sh', '-c', script, 'sh', a.path, owner, a.mode.toString(8)],
      (l) => cx.log(l),
      { input: a.base64 },
    );
    cx.log(`${a.append ? 'appended to' : 'wrote'} ${a.path}`);
  },
  'rpm-bootstrap': async (a, cx) => {
    // Downloads are kept inside the target while installing (the stub's memory is small), then dropped.
    const cacheDir = cx.inTarget('/var/tmp/vmstub-rpm-bootstrap');
    await rpmBootstrap({
      repos: a.repos,
      arch: cx.plan.spec.arch,
      packages: a.packages,
      root: cx.target,
      dbpath: a.dbpath,
      keys: a.keys,
      keysFromFirstPackage: a.keysFromFirstPackage,
      sha1KeyBindings: a.sha1KeyBindings,
      cacheDir,
      log: (l) => cx.log(l),
      fetch: { proxy: cx.downloadEnv.http_proxy },
    });
    rmSync(cacheDir, { recursive: true, force: true });
  },
  'gentoo-stage3': async (a, cx) => {
    const cacheDir = cx.inTarget('/var/tmp/vmstub-stage3');
    const { tarball } = await installStage3({
      ...a,
      root: cx.target,
      cacheDir,
      log: (l) => cx.log(l),
      fetch: { proxy: cx.downloadEnv.http_proxy },
    });
    rmSync(tarball, { force: true });
    rmSync(cacheDir, { recursive: true, force: true });
  },
  'copy-in': async (a, cx) => {
    mkdirSync(dirname(cx.inTarget(a.path)), { recursive: true });
    copyFileSync(a.from, cx.inTarget(a.path));
  },
  'check-blank': async (a, cx) => {
    if (!existsSync(a.device))
      throw new InstallError(`there is no data disk (${a.device}); run the stub with --data DISK`);
    const found = await diskSignature(a.device);
    if (found && !a.wipe && !a.startOver)
      throw new InstallError(`the data disk holds ${found}; refusing to format it without --wipe`);
    if (found && a.startOver)
      cx.log(`the data disk holds ${found}, left by the unfinished install; starting over`);
    else if (found) cx.log(`the data disk holds ${found}; wiping it as asked`);
  },
  'check-empty-target': async (a, cx) => {
    const directory = cx.plan.spec.target === 'directory';
    if (directory) {
      const cleared = await clearUnfinished(cx.target);
      if (cleared) cx.log(cleared);
    }
    const entries = existsSync(cx.target) ? readdirSync(cx.target).filter((e) => e !== 'lost+found') : [];
    if (entries.length)
      throw new InstallError(
        `the target is not empty (${entries.slice(0, 3).join(', ')}...); vmstub installs only into an empty one`,
      );
    if (directory) claimDirectory(cx.target);
  },
  'luks-format': async (a, cx) => {
    const key = luksKeyFile();
    cx.log(`$ cryptsetup luksFormat ${LUKS_FORMAT_OPTIONS.join(' ')} ${a.device}`);
    await exec(['cryptsetup', 'luksFormat', ...LUKS_FORMAT_OPTIONS, `--key-file=${key}`, a.device], (l) =>
      cx.log(l),
    );
    await openLuks(a.device, key, cx);
  },
  'luks-rekey': async (a, cx) => {
    const key = luksKeyFile();
    const opens = async (keyFile: string) =>
      (
        await run(which('cryptsetup') ?? 'cryptsetup', [
          'open',
          '--test-passphrase',
          `--key-file=${keyFile}`,
          a.device,
        ])
      ).code === 0;
    // A resumed clone whose first attempt got past this point.
    if (await opens(key)) {
      cx.log(`${a.device} takes the clone's passphrase already`);
      return openLuks(a.device, key, cx);
    }
    const source = luksKeyFile('luksSourcePassphrase');
    if (!(await opens(source)))
      throw new InstallError("neither the clone's passphrase nor its source's opens the copied root");
    cx.log(`$ cryptsetup luksChangeKey ${LUKS_KEYSLOT_OPTIONS.join(' ')} ${a.device}`);
    await exec(
      [
        ...['cryptsetup', 'luksChangeKey', '--batch-mode', ...LUKS_KEYSLOT_OPTIONS],
        ...[`--key-file=${source}`, a.device, key],
      ],
      (l) => cx.log(l),
    );
    await openLuks(a.device, key, cx);
  },
  mount: async (a, cx) => {
    mkdirSync(cx.target, { recursive: true });
    cx.log(`$ mount -t ${a.fstype} ${a.source} ${cx.target}`);
    await exec(['mount', '-t', a.fstype, ...(a.options ? ['-o', a.options] : []), a.source, cx.target], (l) =>
      cx.log(l),
    );
    cx.cleanups.push(
      onCleanup(`unmount ${cx.target}`, async () => {
        // What the bootstrap tool mounted inside and left (it was killed) goes first.
        await unmountUnder(cx.target);
      }),
    );
  },
  'read-uuid': async (a, cx) => {
    const r = await run(which('blkid') ?? 'blkid', ['-p', '-s', 'UUID', '-o', 'value', a.device]);
    cx.vars.ROOT_UUID = r.stdout.toString('utf8').trim();
    if (!cx.vars.ROOT_UUID) throw new InstallError(`cannot read the filesystem UUID of ${a.device}`);
    cx.log(`root filesystem UUID ${cx.vars.ROOT_UUID}`);
  },
  'chroot-mounts': async (a, cx) => {
    if (cx.state.chrootMounted) return;
    for (const [fs, type] of [
      ['proc', 'proc'],
      ['sys', 'sysfs'],
      ['dev', 'devtmpfs'],
      ['dev/pts', 'devpts'],
      ['run', 'tmpfs'],
    ] as const) {
      mkdirSync(cx.inTarget(fs), { recursive: true });
      await exec(['mount', '-t', type, type === 'devpts' ? 'devpts' : fs, cx.inTarget(fs)], (l) => cx.log(l));
      cx.cleanups.push(
        onCleanup(`unmount ${cx.inTarget(fs)}`, async () => {
          await run(which('umount') ?? 'umount', ['-l', cx.inTarget(fs)]);
        }),
      );
    }
    cx.state.chrootMounted = true;
  },
  'verify-boot': async (a, cx) => {
    const k = findInstalledKernel(cx.target);
    if (!k) throw new InstallError('no kernel where the boot handoff looks (/boot/vmlinuz-*, /vmlinuz)');
    if (!k.initrds.length) throw new InstallError(`${k.name} has no initramfs`);
    cx.vars.KERNEL = k.kernel.slice(cx.target.length);
    cx.log(
      `kernel ${cx.vars.KERNEL}, initramfs ${k.initrds.map((p) => p.slice(cx.target.length)).join(' ')}`,
    );
  },
  'host-keys': async (a, cx) => {
    if (!cx.hostKeys) return runAction(chroot(['ssh-keygen', '-A']), cx);
    const names = Object.keys(cx.hostKeys);
    if (!names.length || !names.every((n) => HOST_KEY_FILE.test(n)))
      throw new InstallError(`the host's SSH host keys are not host key files: ${names.join(', ')}`);
    const dir = cx.inTarget('/etc/ssh');
    mkdirSync(dir, { recursive: true });
    // The package's own keys (openssh-server's postinst makes them) give way to these.
    for (const f of readdirSync(dir)) if (HOST_KEY_FILE.test(f)) rmSync(join(dir, f));
    for (const [name, content] of Object.entries(cx.hostKeys))
      writeFileSync(join(dir, name), content, { mode: name.endsWith('.pub') ? 0o644 : 0o600 });
    cx.log(`SSH host keys made by the host: ${names.filter((n) => n.endsWith('.pub')).join(', ')}`);
  },
  'collect-host-keys': async (a, cx) => {
    const dir = cx.inTarget('/etc/ssh');
    const keys = readdirSync(dir)
      .filter((f) => /^ssh_host_\w+_key\.pub$/.test(f))
      .sort()
      .map((f) => readFileSync(join(dir, f), 'utf8').trim().split(/\s+/).slice(0, 2).join(' '));
    if (!keys.length) throw new InstallError('the new system has no SSH host keys');
    cx.vars.HOST_KEYS = JSON.stringify(keys);
  },
};

const HOST_KEY_FILE = /^ssh_host_[a-z0-9]+_key(\.pub)?$/;

/** A command's argument with the stub's directories (TARGET, STAGING, HOOKS) where they are this time. */
function relocate(arg: string, cx: ActionContext): string {
  return arg
    .replaceAll(TARGET, cx.target)
    .replaceAll(STAGING, cx.staging ?? STAGING)
    .replaceAll(HOOKS, cx.hooks ?? HOOKS);
}

const runAction = (a: Action, cx: ExecContext): Promise<void> =>
  (RUN[a.kind] as (a: Action, cx: ExecContext) => Promise<void>)(a, cx);

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
  /** The current step's last lines: a failure's reason is one line, and what filled the disk said so before it. */
  const recent: string[] = [];
  const log = (step: string, line: string) => {
    writeFileSync(o.logFile, `[${step}] ${line}\n`, { flag: 'a' });
    o.emit({ type: 'log', step, line });
    recent.push(line);
    if (recent.length > RECENT_LINES) recent.shift();
  };
  const inTarget = (p: string) => join(target, p);
  const substitute = (s: string) => s.replace(/\{\{(\w+)\}\}/g, (m, k: string) => vars[k] ?? m);
  const state = { chrootMounted: false };

  o.emit({
    type: 'install-start',
    distro: plan.distro.id,
    hostname: plan.spec.hostname,
    steps: plan.steps.map((s) => ({ id: s.id, title: s.title })),
  });
  const staging = o.staging ?? STAGING;
  const hooks = o.hooks ?? HOOKS;
  for (const dir of [staging, hooks]) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  let current: Step | undefined;
  try {
    for (const [i, step] of plan.steps.entries()) {
      current = step;
      recent.length = 0;
      const t = Date.now();
      o.emit({
        type: 'step-start',
        step: step.id,
        title: step.title,
        index: i + 1,
        total: plan.steps.length,
      });
      const cx: ExecContext = {
        plan,
        step,
        target,
        staging,
        hooks,
        inTarget,
        vars,
        substitute,
        cleanups,
        state,
        downloadEnv: o.downloadProxy ? { http_proxy: o.downloadProxy } : {},
        hostKeys: o.hostKeys,
        log: (line) => log(step.id, line),
        emit: o.emit,
      };
      for (const a of step.actions) await runAction(a, cx);
      markUnfinished(target);
      o.emit({ type: 'step-end', step: step.id, seconds: Math.round((Date.now() - t) / 100) / 10 });
    }
  } catch (e) {
    const space = plan.spec.target === 'disk' ? mountedSpace(target) : undefined;
    const diskFull = space !== undefined && filledUp([oneLine(e), ...recent].join('\n'), space);
    const reason = diskFull ? `${oneLine(e)}; ${diskFullNote(space)}` : oneLine(e);
    log(current?.id ?? 'start', `FAILED: ${reason}`);
    await undo(cleanups);
    o.emit({
      type: 'install-failed',
      step: current?.id ?? 'start',
      reason,
      log: o.logFile,
      ...(diskFull ? { diskFull } : {}),
    });
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

const RECENT_LINES = 40;

/** The size and free space of the filesystem mounted at target; none before the disk is mounted there. */
function mountedSpace(target: string): FilesystemSpace | undefined {
  if (!mountsUnder(target).includes(target)) return undefined;
  const st = statfsSync(target);
  return { sizeBytes: st.blocks * st.bsize, freeBytes: st.bavail * st.bsize };
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
