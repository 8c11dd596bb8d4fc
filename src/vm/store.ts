import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExitCode, VmstubError, conflictError } from '../util/errors.js';
import { stateDir } from '../util/paths.js';
import type { Arch } from '../util/arch.js';
import { ownerIsLive, processStartTicks, readOwner, releaseLock, tryLock } from '../util/pidlock.js';
import { validateName, type VmDefinition } from './definition.js';

export interface InstancePaths {
  dir: string;
  definition: string;
  state: string;
  lock: string;
  qmp: string;
  qga: string;
  console: string;
  consoleLog: string;
  qemuLog: string;
  supervisorLog: string;
  events: string;
  pidFile: string;
  /** The supervisor's pid while it runs: the main process of a vmstub@NAME service (src/vm/service.ts). */
  supervisorPidFile: string;
  efiVars: string;
  volatileData: string;
  sshDir: string;
  knownHosts: string;
  sshKey: string;
  /** The instance's OpenSSH config block (src/vm/ssh-config.ts). */
  sshConfig: string;
  /** The keys a started stub is told to authorize (fw_cfg). */
  authorizedKeys: string;
  /** The supervisor's control socket (the starter waits on it). */
  supervisorSocket: string;
  /** One virtiofsd socket per share, by the share's index. */
  virtiofsSocket: (index: number) => string;
  virtiofsdLog: string;
  /** The data disk vmstub create makes (vmstub rm moves it out: docs/commands.md). */
  createdDisk: string;
  /** The qcow2 overlay clone and snapshot put over a frozen disk (src/installer/clone.ts, src/vm/snapshots.ts). */
  overlayDisk: string;
  /** The resolved install spec create passed to the stub; install.json says where it stands. */
  installSpec: string;
  /** The guest ports the supervisor forwards now because the guest listens on them (--auto-forward). */
  autoForwards: string;
  /** Made by vmstub stop: the guest's power-off that follows is a stop, never the handoff's relaunch. */
  stopRequested: string;
  /** The cloud-init NoCloud seed run --cloud-init-iso made. */
  cloudInitSeed: string;
  /** The package cache's address and token for the install running now (owner-only; removed after). */
  packageCache: string;
  /** The SSH host keys made for the system being installed, until the stub has them (owner-only). */
  sshHostKeys: string;
  /** create --keyring's file, kept with the instance for resume and passed to the stub (fw_cfg). */
  mirrorKeyring: string;
  /**
   * An encrypted root's passphrase (owner-only): kept while the host unlocks it (unlock: host); with
   * unlock: console only until the install ends.
   */
  luksPassphrase: string;
  /** A clone's source's passphrase (owner-only), for the clone's first boot only (vmstub clone). */
  luksSourcePassphrase: string;
  installStatus: string;
  /** The installer's log, as the stub streamed it. */
  installLog: string;
  /** What the stub's boot-export port wrote this run (machines whose stub hands over by the host). */
  bootExport: string;
  /** The installed kernel, initramfs and command line the host boots directly (src/boot/boot-export.ts). */
  directBoot: string;
  /** fw_cfg's items as a disk, on machines without fw_cfg (src/vm/fw-cfg-disk.ts), until QEMU has it open. */
  fwCfgDisk: string;
}

/** The virtiofsd sockets' names, for removing whatever a killed start left. */
export const VIRTIOFS_SOCKET = /^virtiofs-\d+\.sock$/;

/** Runtime facts about a started instance; rewritten on every start, kept after exit for `show`. */
export interface InstanceState {
  supervisorPid?: number;
  qemuPid?: number;
  startedAt?: string;
  accel?: 'kvm' | 'tcg';
  arch?: Arch;
  sshPort?: number;
  shareModes?: Record<string, 'virtiofs' | '9p'>;
  qemuCommand?: string[];
  /** How the last run ended: QEMU's SHUTDOWN reason (guest-shutdown, host-qmp-quit, ...), or why not known. */
  lastExit?: { at: string; reason: string; clean: boolean };
}

export const instancesRoot = (): string => join(stateDir(), 'instances');

export function instancePaths(name: string, root = instancesRoot()): InstancePaths {
  const dir = join(root, name);
  const sshDir = join(dir, 'ssh');
  return {
    dir,
    definition: join(dir, 'vm.json'),
    state: join(dir, 'state.json'),
    lock: join(dir, 'lock'),
    qmp: join(dir, 'qmp.sock'),
    qga: join(dir, 'qga.sock'),
    console: join(dir, 'console.sock'),
    consoleLog: join(dir, 'console.log'),
    qemuLog: join(dir, 'qemu.log'),
    supervisorLog: join(dir, 'supervisor.log'),
    events: join(dir, 'events.ndjson'),
    pidFile: join(dir, 'qemu.pid'),
    supervisorPidFile: join(dir, 'supervisor.pid'),
    efiVars: join(dir, 'efivars.fd'),
    volatileData: join(dir, 'volatile-data.img'),
    sshDir,
    knownHosts: join(sshDir, 'known_hosts'),
    sshKey: join(sshDir, 'id_ed25519'),
    sshConfig: join(sshDir, 'config'),
    authorizedKeys: join(sshDir, 'authorized_keys'),
    supervisorSocket: join(dir, 'supervisor.sock'),
    virtiofsSocket: (index) => join(dir, `virtiofs-${index}.sock`),
    virtiofsdLog: join(dir, 'virtiofsd.log'),
    createdDisk: join(dir, 'disk.img'),
    overlayDisk: join(dir, 'disk.qcow2'),
    installSpec: join(dir, 'install-spec.json'),
    cloudInitSeed: join(dir, 'cidata.iso'),
    autoForwards: join(dir, 'auto-forwards.json'),
    stopRequested: join(dir, 'stop-requested'),
    packageCache: join(dir, 'package-cache'),
    sshHostKeys: join(dir, 'ssh-host-keys.json'),
    mirrorKeyring: join(dir, 'mirror-keyring'),
    luksPassphrase: join(dir, 'luks-passphrase'),
    luksSourcePassphrase: join(dir, 'luks-source-passphrase'),
    installStatus: join(dir, 'install.json'),
    installLog: join(dir, 'install.log'),
    bootExport: join(dir, 'boot-export'),
    directBoot: join(dir, 'direct-boot'),
    fwCfgDisk: join(dir, 'fw-cfg.tar'),
  };
}

/** Unix socket paths are limited to 107 bytes; say so before QEMU fails obscurely. */
const SOCKET_PATH_MAX = 107;

/** Writes a file so that readers see the old or the new content, never half of it. */
export function writeFileAtomic(path: string, content: string | Buffer, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode });
  renameSync(tmp, path);
}

export const existsError = (name: string) =>
  conflictError(`an instance named ${name} already exists (vmstub start ${name}, or vmstub rm ${name})`);

export function createInstance(def: VmDefinition, root = instancesRoot()): InstancePaths {
  validateName(def.name);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const paths = instancePaths(def.name, root);
  if (Buffer.byteLength(paths.console) > SOCKET_PATH_MAX) {
    throw new VmstubError(
      `instance directory ${paths.dir} is too long for Unix sockets; set VMSTUB_HOME to a shorter path`,
      ExitCode.usage,
    );
  }
  try {
    mkdirSync(paths.dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw existsError(def.name);
    }
    throw e;
  }
  mkdirSync(paths.sshDir, { mode: 0o700 });
  writeFileAtomic(paths.definition, JSON.stringify(def, null, 2) + '\n');
  return paths;
}

export function loadDefinition(name: string, root = instancesRoot()): VmDefinition {
  validateName(name);
  const paths = instancePaths(name, root);
  let text: string;
  try {
    text = readFileSync(paths.definition, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw conflictError(`no instance named ${name}`);
    throw e;
  }
  let def: unknown;
  try {
    def = JSON.parse(text);
  } catch {
    throw new VmstubError(`${paths.definition} is not valid JSON`);
  }
  const d = def as Partial<VmDefinition> | null;
  if (
    !d ||
    typeof d !== 'object' ||
    typeof d.memoryMiB !== 'number' ||
    typeof d.cpus !== 'number' ||
    !Array.isArray(d.nets) ||
    !Array.isArray(d.shares)
  )
    throw new VmstubError(`${paths.definition} is damaged (not a vmstub instance definition)`);
  return { ...(d as VmDefinition), name };
}

export function saveDefinition(def: VmDefinition, root = instancesRoot()): void {
  writeFileAtomic(instancePaths(def.name, root).definition, JSON.stringify(def, null, 2) + '\n');
}

/**
 * Changes an instance's definition under a lock, so that two commands changing it at once (two port
 * adds) both land. Returns what fn returned; fn may throw to change nothing.
 */
export async function editDefinition<T>(
  name: string,
  fn: (def: VmDefinition) => T | Promise<T>,
  root = instancesRoot(),
): Promise<T> {
  const lock = `${instancePaths(name, root).definition}.lock`;
  loadDefinition(name, root); // no instance: say so before taking a lock in a directory that is not there
  for (let waited = 0; tryLock(lock); waited += 50) {
    if (waited > 10_000) throw conflictError(`${name}'s definition is being changed by another command`);
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    const fresh = loadDefinition(name, root);
    const result = await fn(fresh);
    saveDefinition(fresh, root);
    return result;
  } finally {
    releaseLock(lock);
  }
}

/** Every instance directory, also one whose vm.json is missing or damaged (list shows those as broken). */
export function listInstanceNames(root = instancesRoot()): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

/** Where vmstub rm puts the disks it keeps: outside every instance directory. */
export const keptDisksDir = (): string => join(stateDir(), 'disks');

export function readState(paths: InstancePaths): InstanceState {
  try {
    return JSON.parse(readFileSync(paths.state, 'utf8')) as InstanceState;
  } catch {
    return {};
  }
}

export function writeState(paths: InstancePaths, state: InstanceState): void {
  writeFileAtomic(paths.state, JSON.stringify(state, null, 2) + '\n');
}

export { processStartTicks };

const readLock = readOwner;
const lockIsLive = ownerIsLive;

/** The pid of the live supervisor holding the instance, if any. */
export function runningSupervisor(paths: InstancePaths): number | undefined {
  const lock = readLock(paths.lock);
  return lockIsLive(lock) ? lock.pid : undefined;
}

/** Files that belong to a run and mean nothing once its supervisor is gone. */
export function removeRunFiles(paths: InstancePaths): void {
  for (const f of [
    paths.qmp,
    paths.qga,
    paths.console,
    paths.pidFile,
    paths.supervisorPidFile,
    paths.volatileData,
    paths.bootExport,
    paths.autoForwards,
    paths.stopRequested,
  ]) {
    rmSync(f, { force: true });
  }
}

/**
 * Takes the instance for this process. The lock appears with its content in one step (link of a
 * filled temporary file), so exactly one of two concurrent callers wins and nobody reads it half
 * written; a lock left by a dead supervisor is cleaned away with the run files it left.
 */
export function acquireInstanceLock(paths: InstancePaths, name: string): void {
  const holder = tryLock(paths.lock, () => removeRunFiles(paths));
  if (holder?.pid) throw conflictError(`${name} is already running (pid ${holder.pid})`);
  if (holder) throw conflictError(`${name} is being started by another process`);
}

/** The supervisor takes the lock from the process that started it, in one atomic step. */
export function takeOverInstanceLock(paths: InstancePaths, fromPid: number): void {
  const current = readLock(paths.lock);
  if (current?.pid !== fromPid)
    throw conflictError(`the lock of ${paths.dir} is not held by its starter (${fromPid})`);
  writeFileAtomic(paths.lock, JSON.stringify({ pid: process.pid, start: processStartTicks(process.pid) }));
}

export function releaseInstanceLock(paths: InstancePaths): void {
  releaseLock(paths.lock);
}

export function removeInstance(paths: InstancePaths): void {
  rmSync(paths.dir, { recursive: true, force: true });
}
