import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { release } from 'node:os';
import { createInterface } from 'node:readline';
import { stubImagePath } from '../image/locations.js';
import type { Arch } from '../util/arch.js';
import { onCleanup } from '../util/cleanup.js';
import { ExitCode, VmstubError, oneLine } from '../util/errors.js';
import { which } from '../util/exec.js';
import { hostArch, requireQemu, resolveAccel } from './accel.js';
import type { VmDefinition } from './definition.js';
import { prepareUefi } from './firmware.js';
import { freeLoopbackPort } from './ports.js';
import { writeSshConfig } from './ssh-config.js';
import { ARCH_TRAITS, buildQemuArgv, fwCfgItems, type LaunchPlan } from './qemu-argv.js';
import { writeFwCfgDisk } from './fw-cfg-disk.js';
import { HOST_HANDOFF_ARG, readDirectBoot } from '../boot/boot-export.js';
import { fwCfgName } from '../events/protocol.js';
import { chooseShareMode, findVirtiofsd, startVirtiofsd } from './shares.js';
import {
  acquireInstanceLock,
  instancePaths,
  loadDefinition,
  readState,
  releaseInstanceLock,
  removeRunFiles,
  runningSupervisor,
  type InstancePaths,
  type InstanceState,
} from './store.js';
import { bootFilesFromImage, bootFilesFromKernel } from './system-image.js';
import { conflictError } from '../util/errors.js';

/** What the starter tells the supervisor about the QEMU it launched (in VMSTUB_LAUNCH). */
export interface LaunchInfo {
  starterPid: number;
  qemuPid: number;
  daemonPids: number[];
  state: InstanceState;
  /** What QEMU was started from: the supervisor starts it again from this for a direct boot. */
  plan: LaunchPlan;
}

/** Lines the supervisor sends its starter on fd 3, one JSON object each. */
export type SupervisorReport =
  { type: 'ready' } | { type: 'qemu-exited' } | { type: 'error'; message: string };

const BRIDGE_HELPERS = ['/usr/lib/qemu/qemu-bridge-helper', '/usr/libexec/qemu-bridge-helper'];
const HOSTFWD_FAILURE = 'Could not set up host forwarding rule';
const START_ATTEMPTS = 5;

/** The supervisor's own QMP monitor, on every QEMU it looks after. */
export const supervisorMonitorArgs = (paths: InstancePaths): string[] => [
  '-chardev',
  `socket,id=supervisor,path=${paths.supervisorSocket},server=on,wait=off`,
  '-mon',
  'chardev=supervisor,mode=control',
];

/**
 * Starts QEMU detached, its console on pipes and its errors appended to qemu.log after the command
 * line, its sockets and pid file for the owner only. Used by the starter and, for a direct boot, by
 * the supervisor.
 */
export function spawnQemu(paths: InstancePaths, qemuPath: string, argv: string[]): ChildProcess {
  for (const f of [paths.supervisorSocket, paths.qmp, paths.qga]) rmSync(f, { force: true });
  const qemuLog = openSync(paths.qemuLog, 'a', 0o600);
  writeFileSync(qemuLog, `=== ${new Date().toISOString()} ${qemuPath} ${argv.join(' ')}\n`);
  const oldUmask = process.umask(0o077);
  try {
    return spawn(qemuPath, argv, { stdio: ['pipe', 'pipe', qemuLog], detached: true });
  } finally {
    process.umask(oldUmask);
    closeSync(qemuLog);
  }
}

/** How the CLI re-invokes itself as a supervisor: the same script (the bundle, or compiled main). */
/** This very node and this very vmstub script (the supervisor is started with it, and a service unit runs it). */
export function selfCommand(): { node: string; script: string } {
  return { node: process.execPath, script: process.argv[1]! };
}

/**
 * For a firmware boot (an ISO, a boot disk), a kernel KVM can be checked with: the host's own, else
 * the stub's. Undefined when neither is at hand.
 */
async function probeKernel(arch: Arch): Promise<string | undefined> {
  const own = `/boot/vmlinuz-${release()}`;
  if (arch === hostArch()) {
    try {
      accessSync(own, constants.R_OK);
      return own;
    } catch {
      // not readable by this user (Ubuntu), or not there (a container)
    }
  }
  const stub = stubImagePath(arch);
  return existsSync(stub) ? (await bootFilesFromImage(stub)).kernel : undefined;
}

/** Everything one run of a VM needs besides the definition, resolved before QEMU starts. */
async function resolvePlan(
  def: VmDefinition,
  paths: InstancePaths,
  note: (t: string) => void,
  daemons: ChildProcess[],
): Promise<Omit<LaunchPlan, 'sshPort'>> {
  // An ISO or a boot disk is booted by the firmware, of the architecture --arch names (else the host's).
  const boot = def.system
    ? await bootFilesFromImage(def.system)
    : def.kernel
      ? await bootFilesFromKernel(def.kernel, def.initrd)
      : {
          arch: def.arch ?? hostArch() ?? 'x86_64',
          kernel: undefined,
          initrd: undefined,
          cmdline: undefined,
        };
  requireQemu(boot.arch);
  const firmwareBoot = ARCH_TRAITS[boot.arch].firmwareBoot;
  if (!boot.kernel && firmwareBoot === 'none')
    throw new VmstubError(
      `--arch ${boot.arch}: vmstub boots ${boot.arch} guests from a kernel (a system image or --kernel), not through firmware`,
      ExitCode.usage,
    );
  const kvmProbeKernel = boot.kernel ?? (def.accel === 'auto' ? await probeKernel(boot.arch) : undefined);
  const accel = await resolveAccel(def.accel, boot.arch, kvmProbeKernel);
  if (accel.note) note(accel.note);
  if (def.data && !existsSync(def.data.path))
    throw new VmstubError(`data disk ${def.data.path} not found`, ExitCode.usage);
  for (const s of def.shares) {
    if (!existsSync(s.path) || !statSync(s.path).isDirectory()) {
      throw new VmstubError(`shared directory ${s.path} not found`, ExitCode.usage);
    }
  }
  const uefi = def.uefi || (!boot.kernel && firmwareBoot === 'uefi');
  const firmware = uefi ? prepareUefi(boot.arch, paths.efiVars) : undefined;
  // Where the stub cannot kexec, it sends the installed kernel to the host (src/boot/boot-export.ts),
  // told which one the host has already.
  if (def.handoff === 'kexec' && ARCH_TRAITS[boot.arch].handoff === 'host')
    throw new VmstubError(
      `--handoff kexec: the ${boot.arch} stub has no kexec (Debian 13 has no kexec-tools for ${boot.arch}); the host boots its installed system`,
      ExitCode.usage,
    );
  const hostHandoff = (def.handoff ?? ARCH_TRAITS[boot.arch].handoff) === 'host' && Boolean(def.system);
  const kept = hostHandoff ? readDirectBoot(paths.directBoot) : undefined;

  const daemon = def.shares.length ? findVirtiofsd() : undefined;
  const shares: LaunchPlan['shares'] = [];
  for (const [i, s] of def.shares.entries()) {
    const choice = chooseShareMode(daemon);
    note(`share ${s.path} as '${s.tag}': ${choice.mode}${choice.why ? ` (${choice.why})` : ''}`);
    if (choice.mode === 'virtiofs') {
      const socket = paths.virtiofsSocket(i);
      rmSync(socket, { force: true });
      daemons.push(await startVirtiofsd(daemon!, s.path, socket, paths.virtiofsdLog));
      shares.push({ ...s, mode: 'virtiofs', socket });
    } else {
      shares.push({ ...s, mode: '9p' });
    }
  }
  if (def.volatileDataBytes) {
    writeFileSync(paths.volatileData, '', { mode: 0o600 });
    truncateSync(paths.volatileData, def.volatileDataBytes);
  }
  return {
    def,
    arch: boot.arch,
    accel: accel.accel,
    kernel: boot.kernel,
    initrd: boot.initrd,
    imageCmdline: hostHandoff ? [boot.cmdline, HOST_HANDOFF_ARG].filter(Boolean).join(' ') : boot.cmdline,
    qmpSocket: paths.qmp,
    qgaSocket: paths.qga,
    eventsFile: paths.events,
    pidFile: paths.pidFile,
    shares,
    bootExport: hostHandoff ? paths.bootExport : undefined,
    extraFwCfg: kept ? [{ name: fwCfgName('bootDigests'), string: kept.digests }] : undefined,
    volatileData: def.volatileDataBytes ? paths.volatileData : undefined,
    firmware: firmware && {
      code: firmware.code,
      vars: firmware.vars,
      format: firmware.format,
      requiresSmm: firmware.requiresSmm,
    },
    bridgeHelper: def.nets.some((n) => n.kind === 'bridge')
      ? BRIDGE_HELPERS.find((p) => existsSync(p))
      : undefined,
  };
}

function logTail(path: string, from: number): string {
  try {
    return readFileSync(path).subarray(from).toString('utf8');
  } catch {
    return '';
  }
}

const fileSize = (path: string): number => (existsSync(path) ? statSync(path).size : 0);

/** The supervisor's reports, until it says ready or QEMU is gone (or the supervisor itself dies). */
async function awaitSupervisor(child: ChildProcess, paths: InstancePaths): Promise<SupervisorReport> {
  const channel = child.stdio[3] as NodeJS.ReadableStream;
  const lines = createInterface({ input: channel });
  try {
    for await (const line of lines) {
      try {
        return JSON.parse(line) as SupervisorReport;
      } catch {
        continue;
      }
    }
  } finally {
    lines.close();
    (channel as unknown as { destroy(): void }).destroy();
  }
  return { type: 'error', message: `the supervisor ended without a word; see ${paths.supervisorLog}` };
}

/**
 * Starts an instance. This process resolves the plan and launches QEMU itself, then hands QEMU's console
 * pipes to a detached supervisor (so the supervisor's start-up overlaps QEMU's), and returns once QEMU
 * answers on the supervisor's monitor. A QEMU that cannot bind the SSH port it was given (someone took it
 * meanwhile) is started again with another.
 */
export interface StartOptions {
  /** Kernel arguments for this boot only (e.g. vmstub.nokexec for --stub). */
  extraAppend?: string[];
  /** fw_cfg items for this boot only (the install spec of vmstub create). */
  extraFwCfg?: { name: string; file: string }[];
  /** Read-only disks for this boot only (the root filesystem vmstub create bootstrapped on the host). */
  extraDisks?: { serial: string; path: string }[];
}

export async function startInstance(
  name: string,
  onNote: (text: string) => void,
  opts: StartOptions = {},
): Promise<InstanceState> {
  const paths = instancePaths(name);
  const stored = loadDefinition(name);
  const def = opts.extraAppend?.length
    ? { ...stored, append: [...stored.append, ...opts.extraAppend] }
    : stored;
  const holder = runningSupervisor(paths);
  if (holder) throw conflictError(`${name} is already running (pid ${holder})`);
  acquireInstanceLock(paths, name);
  rmSync(paths.stopRequested, { force: true }); // a stop asked of an earlier run, whose supervisor died
  const daemons: ChildProcess[] = [];
  let qemu: ChildProcess | undefined;
  let supervisor: ChildProcess | undefined;
  // Until the supervisor has taken over, an interrupted start takes everything back.
  const abandon = () => {
    for (const p of [supervisor, qemu]) p?.kill('SIGKILL');
    for (const d of daemons) d.kill('SIGTERM');
    removeRunFiles(paths);
    rmSync(paths.supervisorSocket, { force: true });
    releaseInstanceLock(paths);
  };
  const starting = onCleanup(`the start of ${name}`, abandon);
  try {
    const plan = await resolvePlan(def, paths, onNote, daemons);
    if (existsSync(paths.events)) renameSync(paths.events, `${paths.events}.1`);
    writeFileSync(paths.events, '', { mode: 0o600 });
    const wantsSsh = def.nets.some((n) => n.kind === 'user');
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const sshPort = wantsSsh ? await freeLoopbackPort() : undefined;
      const launchPlan: LaunchPlan = {
        ...plan,
        sshPort,
        extraFwCfg: [...(plan.extraFwCfg ?? []), ...(opts.extraFwCfg ?? [])],
        extraDisks: opts.extraDisks,
      };
      if (!ARCH_TRAITS[plan.arch].fwCfg) {
        launchPlan.fwCfgDisk = paths.fwCfgDisk;
        writeFwCfgDisk(paths.fwCfgDisk, fwCfgItems(launchPlan));
      }
      const { binary, args } = buildQemuArgv(launchPlan);
      const argv = [...args, ...supervisorMonitorArgs(paths)];
      const qemuPath = which(binary) ?? requireQemu(plan.arch);
      const logStart = fileSize(paths.qemuLog);
      qemu = spawnQemu(paths, qemuPath, argv);
      const spawnError = new Promise<Error>((resolve) => qemu!.once('error', resolve));
      const launch: LaunchInfo = {
        starterPid: process.pid,
        qemuPid: qemu.pid ?? -1,
        daemonPids: daemons.map((d) => d.pid!).filter(Boolean),
        state: {
          qemuPid: qemu.pid,
          accel: plan.accel,
          arch: plan.arch,
          sshPort,
          shareModes: Object.fromEntries(plan.shares.map((s) => [s.tag, s.mode])),
          qemuCommand: [qemuPath, ...argv],
        },
        plan: launchPlan,
      };
      const supLog = openSync(paths.supervisorLog, 'a', 0o600);
      const { node, script } = selfCommand();
      supervisor = spawn(node, [script, '__supervise', name], {
        detached: true,
        stdio: [qemu.stdout!, supLog, supLog, 'pipe', qemu.stdin!],
        env: { ...process.env, VMSTUB_LAUNCH: JSON.stringify(launch) },
      });
      closeSync(supLog);
      // The supervisor has its own copies of QEMU's pipes now; ours must not keep them open.
      qemu.stdout!.destroy();
      qemu.stdin!.destroy();
      const report = await Promise.race([
        awaitSupervisor(supervisor, paths),
        spawnError.then((e) => ({ type: 'error' as const, message: e.message })),
      ]);
      supervisor.unref();
      if (report.type === 'ready') {
        // QEMU has the fw_cfg disk open; the file may hold this boot's secrets (package cache token, host keys).
        rmSync(paths.fwCfgDisk, { force: true });
        starting.release();
        qemu.unref();
        for (const d of daemons) d.unref();
        try {
          writeSshConfig(name, paths, def.sshUser, sshPort);
        } catch (e) {
          onNote(`${name} is running, but its ssh config was not written: ${oneLine(e)}`);
        }
        return readState(paths);
      }
      if (report.type === 'error') {
        qemu.kill('SIGKILL');
        throw new VmstubError(report.message);
      }
      const tail = logTail(paths.qemuLog, logStart);
      // QEMU's line quotes the one rule that failed (and repeats the whole -netdev, every rule in it).
      const failedRule = new RegExp(`${HOSTFWD_FAILURE} '([^']+)'`).exec(tail)?.[1];
      if (failedRule && sshPort && failedRule.includes(`:${sshPort}-`)) continue; // port taken meanwhile
      if (failedRule)
        throw new VmstubError(
          `cannot forward ${failedRule.replace(/-/, ' to guest ')}: that host port is in use (or not allowed)`,
        );
      const lines = tail
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('===') && !l.includes('warning:'));
      throw new VmstubError(
        `QEMU failed to start: ${lines.pop() ?? 'no error output'} (log: ${paths.qemuLog})`,
      );
    }
    throw new VmstubError(`QEMU could not bind a free SSH port in ${START_ATTEMPTS} attempts`);
  } catch (e) {
    starting.release();
    for (const d of daemons) d.kill('SIGTERM');
    removeRunFiles(paths);
    rmSync(paths.supervisorSocket, { force: true });
    releaseInstanceLock(paths);
    throw e;
  }
}
