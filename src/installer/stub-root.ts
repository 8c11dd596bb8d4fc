/**
 * A plan's steps run on the host in the stub's own userland: the stub's squashfs mounted read-only
 * under a throwaway overlay, entered with chroot, and this vmstub's bundle run there by the stub's node
 * against a target directory of the host's. The RPM bootstrap then runs with the stub's rpm, rpmkeys
 * and keys (Debian 13's, with rpm-sequoia), exactly as in a guest, natively instead of under TCG and
 * with nothing of the kind installed on the host. Everything mounted is undone afterwards, also when the
 * work fails or vmstub is interrupted.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openChroot, CHROOT_ENV } from '../image/chroot.js';
import { installationPaths } from '../image/installation.js';
import type { InstallEvent } from '../events/protocol.js';
import { onCleanup } from '../util/cleanup.js';
import { VmstubError } from '../util/errors.js';
import { run, runLines, which } from '../util/exec.js';
import { removeTree, unmountUnder } from '../util/mounts.js';
import { cacheDir } from '../util/paths.js';
import { executePlan, InstallFailure } from './execute.js';
import type { Plan } from './plan/types.js';

/** The internal command the stub's node runs: `vmstub __exec-plan DIR` (DIR holds plan.json). */
export const EXEC_PLAN_COMMAND = '__exec-plan';

/** Where, inside the stub's root, the target and the run's own files are. */
const INSIDE = { target: '/target', run: '/run/vmstub-host' } as const;

interface ExecPlanRequest {
  plan: Plan;
  target: string;
  logFile: string;
  downloadProxy?: string;
}

/** Inside the stub's root: runs the plan written beside it, its events as NDJSON on stdout. */
export async function execPlanFromDir(dir: string): Promise<number> {
  const r = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as ExecPlanRequest;
  try {
    await executePlan(r.plan, {
      target: r.target,
      staging: join(dir, 'staging'),
      hooks: join(dir, 'hooks'),
      logFile: r.logFile,
      downloadProxy: r.downloadProxy,
      emit: (e) => process.stdout.write(JSON.stringify(e) + '\n'),
    });
    return 0;
  } catch (e) {
    if (!(e instanceof InstallFailure))
      process.stdout.write(
        JSON.stringify({
          type: 'install-failed',
          step: 'start',
          reason: (e as Error).message,
          log: r.logFile,
        }) + '\n',
      );
    return 1;
  }
}

export interface StubRootRun {
  /** The stub's squashfs. */
  stub: string;
  /** The host's directory the plan installs into. */
  target: string;
  /** The log the caller keeps of the run (every line comes as a log event), named in a failure. */
  logFile: string;
  /** Host files the plan names (key files), each put at the same path inside the stub's root. */
  files?: string[];
  downloadProxy?: string;
  emit: (e: InstallEvent) => void;
}

/** Mounts the stub read-only with a tmpfs overlay at dir/root; the undo unmounts all of it. */
async function mountStubRoot(stub: string, dir: string): Promise<string> {
  const mount = which('mount') ?? 'mount';
  const lower = join(dir, 'lower');
  const scratch = join(dir, 'scratch');
  const root = join(dir, 'root');
  for (const d of [lower, scratch, root]) mkdirSync(d, { recursive: true });
  const steps: [string, string[]][] = [
    ['the stub image', ['-t', 'squashfs', '-o', 'ro,loop', stub, lower]],
    ['a scratch tmpfs', ['-t', 'tmpfs', '-o', 'mode=0700', 'tmpfs', scratch]],
  ];
  for (const [what, args] of steps) {
    const r = await run(mount, args);
    if (r.code !== 0) throw new VmstubError(`cannot mount ${what} (${stub}): ${r.stderr.trim()}`);
  }
  mkdirSync(join(scratch, 'upper'));
  mkdirSync(join(scratch, 'work'));
  const overlay = await run(mount, [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${lower},upperdir=${scratch}/upper,workdir=${scratch}/work`,
    root,
  ]);
  if (overlay.code !== 0)
    throw new VmstubError(`cannot mount an overlay on the stub: ${overlay.stderr.trim()}`);
  return root;
}

/** Runs plan against o.target with the stub's tools; a failure is one line: the step, its reason, the log. */
export async function runPlanInStubRoot(plan: Plan, o: StubRootRun): Promise<void> {
  if (!existsSync(o.stub)) throw new VmstubError(`no stub image at ${o.stub} (vmstub image build stub)`);
  const base = join(cacheDir(), 'stub-root');
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, 'run-'));
  const undo = onCleanup(`the stub's root under ${dir}`, () => removeTree(dir));
  try {
    const root = await mountStubRoot(o.stub, dir);
    const inside = (p: string) => join(root, p);
    mkdirSync(inside(INSIDE.target), { recursive: true });
    const bind = await run(which('mount') ?? 'mount', ['--bind', o.target, inside(INSIDE.target)]);
    if (bind.code !== 0)
      throw new VmstubError(`cannot bind ${o.target} into the stub: ${bind.stderr.trim()}`);
    const session = await openChroot(root, { network: true });
    let failure: string | undefined;
    try {
      mkdirSync(inside(INSIDE.run), { recursive: true });
      const bundle = join(INSIDE.run, 'vmstub.cjs');
      copyFileSync(installationPaths().bundle, inside(bundle));
      for (const f of o.files ?? []) {
        mkdirSync(inside(join(f, '..')), { recursive: true });
        copyFileSync(f, inside(f));
      }
      const logInside = join(INSIDE.run, 'install.log');
      const request: ExecPlanRequest = {
        plan,
        target: INSIDE.target,
        logFile: logInside,
        downloadProxy: o.downloadProxy,
      };
      writeFileSync(inside(join(INSIDE.run, 'plan.json')), JSON.stringify(request));
      const r = await runLines(
        which('chroot') ?? 'chroot',
        [root, '/usr/bin/node', bundle, EXEC_PLAN_COMMAND, INSIDE.run],
        (line) => {
          let e: InstallEvent;
          try {
            e = JSON.parse(line) as InstallEvent;
          } catch {
            return; // the stub's node says something that is not an event: it is in the log too
          }
          if (e.type === 'install-failed') failure = `${e.step}: ${e.reason}`;
          o.emit(e);
        },
        {
          env: { ...CHROOT_ENV, HOME: '/root', VMSTUB_CACHE: join(INSIDE.run, 'cache') },
          killWithParent: true,
        },
      );
      if (r.code !== 0 || failure)
        throw new VmstubError(
          `${failure ?? `the stub's node ${r.signal ? `was killed by ${r.signal}` : `exited with ${r.code}`}: ${r.last}`} (log: ${o.logFile})`,
        );
    } finally {
      await session.end();
    }
  } finally {
    await undo.undo();
    // The target's own mounts (the plan's chroot mounts) reach the host's directory where / is shared.
    await unmountUnder(o.target);
  }
}

/** The stub's busybox (static), for an image whose release has none: vmstub's small initramfs is made of it. */
export async function stubBusybox(stub: string, into: string): Promise<string> {
  const out = join(into, 'busybox');
  const r = await run(which('unsquashfs') ?? 'unsquashfs', ['-cat', stub, 'usr/bin/busybox']);
  if (r.code !== 0 || r.stdout.length === 0)
    throw new VmstubError(`cannot take busybox from ${stub}: ${r.stderr.trim() || 'it has none'}`);
  writeFileSync(out, r.stdout, { mode: 0o755 });
  return out;
}
