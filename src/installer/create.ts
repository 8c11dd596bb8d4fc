import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { reachedSsh } from '../catalog/evidence.js';
import { decodeEvents, fwCfgName, type InstallEvent, type StubEvent } from '../events/protocol.js';
import { imagesDir, stubImagePath } from '../image/locations.js';
import { buildStub } from '../image/stub.js';
import {
  ExitCode,
  type ExitCodeValue,
  VmstubError,
  conflictError,
  timeoutError,
  usageError,
} from '../util/errors.js';
import { requireTool, run as runProgram } from '../util/exec.js';
import { hostArch, requireQemu, resolveAccel } from '../vm/accel.js';
import { bootFilesFromImage } from '../vm/system-image.js';
import { allocateDisk, virtualSize } from '../vm/allocate.js';
import { refuseSmallDisk } from './disk-space.js';
import { newPassphrase, passphraseFwCfg, writePassphrase, type AskPassphrase } from './luks-key.js';
import { defaultHostname, validateName, type VmDefinition } from '../vm/definition.js';
import { newDefinition, parseShare } from '../vm/definition-builder.js';
import { startInstance } from '../vm/launch.js';
import { isRunning, stopInstance } from '../vm/lifecycle.js';
import { FIRST_BOOT_UNIT, waitForFirstBoot } from './boot-commands.js';
import { ensureInstanceKey, makeHostKeys, sshArgs, waitForSshBanner } from '../vm/ssh.js';
import { hostKeyAlias, instanceSshTarget } from '../vm/ssh-config.js';
import {
  createInstance,
  existsError,
  instancePaths,
  loadDefinition,
  readState,
  removeInstance,
  runningSupervisor,
  type InstancePaths,
} from '../vm/store.js';
import { onCleanup, type Registration } from '../util/cleanup.js';
import {
  GUEST_HOST,
  packageCacheDir,
  packageCacheSkipped,
  withPackageCache,
} from '../package-cache/index.js';
import { describeInstallStatus, installStatus, writeInstallStatus } from './install-state.js';
import { hostPublicKeys, hostTimezone } from './host-defaults.js';
import { ROOT_TARBALL_SERIAL, buildPlan } from './plan/index.js';
import {
  cachedRoot,
  chooseBootstrapSite,
  hasCachedRoot,
  hostAbilities,
  type BootstrapSite,
} from './root-cache.js';
import {
  readRecordedSpec,
  resolveSpecAndMachine,
  type InstallSpec,
  type MachineSpec,
  type SpecInput,
  type SpecSource,
} from './spec.js';

export interface CreateOptions {
  name: string;
  input: SpecInput;
  /** Where the spec came from, for messages: a file (and its lines), or "flags". */
  source: string | SpecSource;
  /** How long to wait for a real SSH login after the install. */
  sshTimeoutSec: number;
  note: (text: string) => void;
  onEvent: (e: InstallEvent | StubEvent) => void;
  tick?: () => void;
  /** Where the bootstrap runs (auto: the host under TCG, where it can). */
  bootstrapOn?: BootstrapSite;
  /** Bootstrap again even if a root filesystem of this recipe is cached. */
  fresh?: boolean;
  /** Print what the choice of bootstrap and cached root was made from. */
  explain?: boolean;
  /** Download through vmstub's package cache (default: yes). */
  packageCache?: boolean;
  /** Asks for an encrypted root's passphrase at the terminal; unset where there is none. */
  askPassphrase?: AskPassphrase;
}

export interface CreateResult {
  name: string;
  distro: string;
  hostname: string;
  sshPort: number;
  hostKeys: string[];
  /** How the first boot's cloud-init and commands (when the spec has some) ended: create waits for them. */
  firstBoot?: 'done' | 'failed';
  /** Seconds for each phase: stub boot, each install step, handoff, boot to SSH, first-boot commands. */
  phases: Record<string, number>;
  seconds: number;
}

/** The hints every stub boot gets: the keys to authorize and the host's time zone. */
export function hintFwCfg(paths: InstancePaths, keys: string[], timezone: string): VmDefinition['fwCfg'] {
  const keysFile = paths.authorizedKeys;
  writeFileSync(keysFile, keys.join('\n') + '\n', { mode: 0o600 });
  return [
    { name: fwCfgName('sshAuthorizedKeys'), file: keysFile },
    { name: fwCfgName('timezone'), string: timezone },
  ];
}

/** Host keys as known_hosts lines under the instance's alias, so strict checking works whatever the port. */
export function knownHostsLines(name: string, hostKeys: string[]): string {
  return hostKeys.map((k) => `${hostKeyAlias(name)} ${k}`).join('\n') + '\n';
}

/** Resolves create's spec; throws a usage error before anything exists. */
export function createSpec(
  o: Pick<CreateOptions, 'name' | 'input' | 'source'>,
  keys: string[],
): { spec: InstallSpec; machine: MachineSpec } {
  validateName(o.name);
  const resolved = resolveSpecAndMachine(
    o.input,
    {
      hostname: defaultHostname(o.name),
      timezone: hostTimezone(),
      sshKeys: keys,
      arch: hostArch() ?? 'x86_64',
    },
    o.source,
  );
  buildPlan(resolved.spec);
  return resolved;
}

/**
 * Decides where the bootstrap runs and, on the host, finds or makes the root filesystem: sets
 * spec.rootTarball and returns the tar stream to attach, or undefined for a bootstrap in the stub.
 */
async function rootForInstall(
  spec: InstallSpec,
  def: VmDefinition,
  o: Pick<CreateOptions, 'bootstrapOn' | 'fresh' | 'explain' | 'note' | 'packageCache'>,
  phases: Record<string, number>,
): Promise<string | undefined> {
  const boot = await bootFilesFromImage(def.system!);
  if (boot.arch !== spec.arch)
    throw usageError(
      `${def.system}: its kernel is for ${boot.arch}, not ${spec.arch}; build the ${spec.arch} stub with vmstub image build stub --arch ${spec.arch}`,
    );
  const { accel } = await resolveAccel(def.accel, spec.arch, boot.kernel);
  const choice = chooseBootstrapSite(
    spec,
    o.bootstrapOn ?? 'auto',
    accel,
    hostAbilities(spec),
    hasCachedRoot(spec),
  );
  if (o.explain) {
    o.note(`bootstrap: ${choice.site === 'host' ? 'on the host' : 'in the stub'} (${choice.reason})`);
    const skipped = packageCacheSkipped(spec, o.packageCache === false);
    o.note(
      `packages: ${skipped ? `not through vmstub's package cache (${skipped})` : `through vmstub's package cache, ${packageCacheDir()}`}`,
    );
  }
  spec.rootTarball = choice.site === 'host';
  if (choice.site === 'guest') return undefined;
  const t = Date.now();
  const root = await cachedRoot(spec, { fresh: o.fresh, note: o.note, packageCache: o.packageCache });
  if (o.explain) for (const line of root.explanation) o.note(`root filesystem: ${line}`);
  phases[root.hit ? 'root from cache' : 'host bootstrap'] = Math.round((Date.now() - t) / 100) / 10;
  if (root.hit)
    o.note(
      `root filesystem: cached (${Object.keys(root.installed).length} packages); --fresh bootstraps again`,
    );
  return root.tarball;
}

/** The instance name must be free before any work starts; an unfinished install of that name says how to go on. */
function refuseExisting(name: string): void {
  const paths = instancePaths(name);
  if (!existsSync(paths.definition)) return;
  const status = installStatus(paths);
  if (status && status.phase !== 'installed')
    throw conflictError(
      `${name} exists: ${describeInstallStatus(status)}; continue with vmstub resume ${name}, or remove it with vmstub rm ${name}`,
    );
  throw existsError(name);
}

/**
 * vmstub create: validates everything, builds the stub image if there is none, allocates the disk,
 * boots the stub with the install spec in fw_cfg, follows the installer's events, records the new
 * system's host key, and waits for a real SSH login. A failed install leaves the VM in the stub.
 * Interrupted, it leaves either nothing (before the VM started) or a stopped instance whose install
 * status says where it stopped (vmstub resume goes on from there).
 */
export async function createWithInstall(o: CreateOptions): Promise<CreateResult> {
  const started = Date.now();
  const { spec, machine } = createSpec(o, hostPublicKeys());
  const shares = machine.shares.map((s) => parseShare(s, machine.baseDir));
  refuseExisting(o.name);
  const fits = { diskBytes: machine.diskBytes, filesystem: spec.filesystem, distro: spec.distro };
  refuseSmallDisk(fits);
  const passphrase = spec.encrypt ? await newPassphrase(machine.keyFile, o.askPassphrase) : undefined;
  if (spec.keyring && !existsSync(spec.keyring))
    throw usageError(`keyring ${spec.keyring} does not exist (create reads it on this host)`);

  requireQemu(spec.arch);
  const stub = stubImagePath(spec.arch);
  const phases: Record<string, number> = {};
  if (!existsSync(stub)) {
    const foreign = spec.arch !== hostArch();
    o.note(
      `no stub image yet: building ${stub} (once; ${foreign ? `under emulation for ${spec.arch}, ten to twenty minutes` : 'a few minutes'})`,
    );
    await buildStub({
      arch: spec.arch,
      outDir: imagesDir(),
      mirrors: {},
      progress: (l) => o.note(`stub: ${l}`),
    });
    phases['stub build'] = Math.round((Date.now() - started) / 100) / 10;
  }

  const def = newDefinition(o.name, {
    system: stub,
    memoryMiB: machine.memoryMiB,
    cpus: machine.cpus,
    shares,
    hostfwds: machine.hostfwds,
    ...(machine.autoForward ? { autoForward: true } : {}),
    sshUser: spec.users.find((u) => u.sudo)?.name ?? 'root',
  });
  // The bootstrap on the host comes before the instance exists: interrupted, it leaves nothing.
  const root = await rootForInstall(spec, def, o, phases);
  if (root) refuseSmallDisk({ ...fits, rootBytes: statSync(root).size });
  // Said once every refusal has had its chance, so that a refusal stays one line.
  if (!reachedSsh(spec.distro, spec.arch))
    o.note(
      `note: no test here has taken ${spec.distro} (${spec.arch}) to an SSH login (vmstub distros says how far they got); going on`,
    );
  const paths = createInstance(def);
  // Until the install runs, an interrupted create takes back what it made: the disk holds nothing yet.
  const unmake = onCleanup(`the half-created instance ${o.name}`, () => {
    if (!runningSupervisor(paths)) removeInstance(paths);
  });
  try {
    if (!spec.root.sshKeys.length) {
      // The user has no keys of their own: a key for this instance, which vmstub ssh uses, for root
      // and for every account that would otherwise have no way in.
      const key = readFileSync(await ensureInstanceKey(paths.sshKey, `vmstub@${o.name}`), 'utf8').trim();
      spec.root.sshKeys = [key];
      for (const u of spec.users) if (!u.sshKeys.length && !u.passwordHash) u.sshKeys = [key];
    }
    const disk = paths.createdDisk;
    await allocateDisk(disk, machine.diskBytes, 'raw');
    def.data = { path: disk, format: 'raw' };
    def.fwCfg = hintFwCfg(paths, spec.root.sshKeys, spec.timezone);
    if (passphrase !== undefined) {
      writePassphrase(paths.luksPassphrase, passphrase);
      def.encryptedRoot = { unlock: machine.unlock };
      if (machine.unlock === 'host') def.fwCfg.push(passphraseFwCfg(paths.luksPassphrase));
    }
    if (spec.keyring) {
      // Kept with the instance (resume and clone pass it again) and given to the stub by fw_cfg.
      copyFileSync(spec.keyring, paths.mirrorKeyring);
      spec.keyring = paths.mirrorKeyring;
    }
    writeFileSync(paths.definition, JSON.stringify(def, null, 2) + '\n', { mode: 0o600 });
    writeFileSync(paths.installSpec, JSON.stringify(spec, null, 2) + '\n', { mode: 0o600 });
  } catch (e) {
    await unmake.undo();
    throw e;
  }
  return installAndVerify(o.name, paths, o, { phases, started, attempt: 1, unmake, rootTarball: root });
}

/**
 * vmstub resume: goes on with an instance whose install did not finish. A VM still installing (its
 * create was killed) is followed again; a stopped one starts the install over on the same disk (the
 * bootstrap cannot be continued half-way: a half-unpacked package database is not safe to build on).
 */
export async function resumeInstall(
  name: string,
  o: Pick<CreateOptions, 'sshTimeoutSec' | 'note' | 'onEvent' | 'tick' | 'askPassphrase'> & {
    keyFile?: string;
  },
): Promise<CreateResult & { resumed: 'followed' | 'started over' }> {
  const started = Date.now();
  const def = loadDefinition(name);
  const paths = instancePaths(name);
  const status = installStatus(paths);
  if (!status || !existsSync(paths.installSpec))
    throw conflictError(`${name} was not made by vmstub create; there is no install to resume`);
  if (status.phase === 'installed')
    throw conflictError(`${name} is installed already (vmstub start ${name})`);
  const full = { ...o, name } as CreateOptions;
  const stubStayed = isRunning(paths) && status.phase !== 'installing';
  if (isRunning(paths) && !stubStayed) {
    o.note(`${name} is still installing (${describeInstallStatus(status)}); following it`);
    return {
      ...(await installAndVerify(name, paths, full, {
        phases: {},
        started,
        attempt: status.attempt,
        follow: true,
      })),
      resumed: 'followed',
    };
  }
  if (!def.data || !existsSync(def.data.path))
    throw conflictError(
      `${name}'s data disk ${def.data?.path ?? ''} is gone; remove it with vmstub rm ${name}`,
    );
  const spec = readRecordedSpec(paths.installSpec);
  const fits = {
    diskBytes: await virtualSize(def.data.path, def.data.format),
    filesystem: spec.filesystem,
    distro: spec.distro,
  };
  refuseSmallDisk(fits, name);
  // An encrypted root the host does not keep the passphrase of: the install starts over with a new
  // one, asked for before any work.
  let passphrase: string | undefined;
  if (def.encryptedRoot && !existsSync(paths.luksPassphrase)) {
    if (def.encryptedRoot.unlock === 'host')
      throw conflictError(`${name}'s passphrase file ${paths.luksPassphrase} is gone; nothing was changed`);
    passphrase = await newPassphrase(o.keyFile, o.askPassphrase, `${name}'s root is formatted again`);
  }
  const phases: Record<string, number> = {};
  // The root filesystem the first attempt was given, found (or bootstrapped) again.
  const rootTarball = spec.rootTarball
    ? await rootForInstall(spec, def, { ...o, bootstrapOn: 'host' }, phases)
    : undefined;
  if (rootTarball) refuseSmallDisk({ ...fits, rootBytes: statSync(rootTarball).size }, name);
  if (passphrase !== undefined) writePassphrase(paths.luksPassphrase, passphrase);
  if (stubStayed) {
    o.note(`${name}: stopping the stub it stayed in after the failed install`);
    await stopInstance(name, { force: true, timeoutSec: 0 });
  }
  writeFileSync(paths.installSpec, JSON.stringify({ ...spec, resume: true }, null, 2) + '\n', {
    mode: 0o600,
  });
  o.note(
    `${name}: ${describeInstallStatus(status)}; starting the install over on the same disk (attempt ${status.attempt + 1})`,
  );
  return {
    ...(await installAndVerify(name, paths, full, {
      phases,
      started,
      attempt: status.attempt + 1,
      rootTarball,
    })),
    resumed: 'started over',
  };
}

/**
 * Boots the stub with the install spec (or, with follow, attaches to an install already running),
 * follows the install to the handoff and checks SSH. Interrupted while the install runs, it stops the
 * VM and records the install as interrupted, with the step it had reached.
 */
export async function installAndVerify(
  name: string,
  paths: InstancePaths,
  o: CreateOptions,
  run: {
    phases: Record<string, number>;
    started: number;
    attempt: number;
    follow?: boolean;
    unmake?: Registration;
    bootedAgain?: boolean;
    /** The root filesystem bootstrapped on the host, attached for this boot. */
    rootTarball?: string;
  },
): Promise<CreateResult> {
  const { phases, started } = run;
  const bootStarted = Date.now();
  const log = paths.installLog;
  // This boot's console output starts here: what it shows is read from this offset on.
  const consoleFrom = existsSync(paths.consoleLog) ? statSync(paths.consoleLog).size : 0;
  const spec = readRecordedSpec(paths.installSpec);
  // A root bootstrapped on the host, or a clone, needs no downloads in the stub. Followed, the cache
  // of the create that started the install is gone with it (a download then fails; resume starts over).
  const useCache =
    !run.follow &&
    !spec.rootTarball &&
    !spec.renewIdentity &&
    !packageCacheSkipped(spec, o.packageCache === false);
  const def = loadDefinition(name);
  // unlock: console: the install's boot alone is given the passphrase, and the file goes when it ends.
  const oneBootPassphrase = def.encryptedRoot?.unlock === 'console' && existsSync(paths.luksPassphrase);
  // Also when vmstub is interrupted, which ends the process before any finally runs.
  const forgetPassphrase = oneBootPassphrase
    ? onCleanup(`${name}'s passphrase file`, () => rmSync(paths.luksPassphrase, { force: true }))
    : undefined;
  let guard: Registration | undefined;
  let done: { hostKeys: string[] };
  try {
    done = await withPackageCache(useCache, o.note, async (cache) => {
      if (!run.follow) {
        // Written first: a create killed right after the VM starts still leaves an instance resume knows.
        writeInstallStatus(paths, { phase: 'installing', log, attempt: run.attempt });
        try {
          if (cache) writeFileSync(paths.packageCache, cache.proxyUrl(GUEST_HOST), { mode: 0o600 });
          writeFileSync(paths.sshHostKeys, JSON.stringify(await makeHostKeys(spec.hostname)), {
            mode: 0o600,
          });
          await startInstance(name, o.note, {
            // vmstub.install: the stub's boot handoff does not start what the disk holds (a resume's leftovers).
            extraAppend: ['vmstub.install'],
            extraFwCfg: [
              { name: fwCfgName('installSpec'), file: paths.installSpec },
              { name: fwCfgName('sshHostKeys'), file: paths.sshHostKeys },
              ...(cache ? [{ name: fwCfgName('packageCache'), file: paths.packageCache }] : []),
              ...(spec.keyring ? [{ name: fwCfgName('mirrorKeyring'), file: spec.keyring }] : []),
              ...(oneBootPassphrase ? [passphraseFwCfg(paths.luksPassphrase)] : []),
              ...(existsSync(paths.luksSourcePassphrase)
                ? [{ name: fwCfgName('luksSourcePassphrase'), file: paths.luksSourcePassphrase }]
                : []),
            ],
            extraDisks: run.rootTarball ? [{ serial: ROOT_TARBALL_SERIAL, path: run.rootTarball }] : [],
          });
          // QEMU read them when it started: the private keys and the token stay on disk no longer. (A
          // passphrase the host does not keep stays until the install ends: a stub that died at once
          // is booted again, and needs it again.)
          rmSync(paths.sshHostKeys, { force: true });
          rmSync(paths.packageCache, { force: true });
        } catch (e) {
          await run.unmake?.undo();
          throw e;
        }
      }
      run.unmake?.release();
      guard = onCleanup(`the install in ${name}`, async () => {
        await stopInstance(name, { force: true, timeoutSec: 0 }).catch(() => 'killed');
        const now = installStatus(paths);
        if (now?.phase === 'installing' || now?.phase === 'interrupted')
          writeInstallStatus(paths, {
            ...now,
            phase: 'interrupted',
            reason: 'vmstub was interrupted; the VM was stopped',
          });
      });
      return follow(paths, o, phases, bootStarted, consoleFrom);
    });
  } catch (e) {
    guard?.release();
    if (e instanceof StubDied) {
      await stopInstance(name, { force: true, timeoutSec: 0 }).catch(() => 'killed');
      // Seen once under TCG: the stub's kernel died in its first seconds, and the same boot again went
      // on. Nothing was written yet, so one more boot is safe; a second death is reported.
      if (e.panickedBeforeInstall && !run.bootedAgain) {
        o.note(`${e.message.replace(/;.*/, '')} before the install began; booting it once more`);
        // Awaited here, so that this call's cleanup (finally) comes after that boot, not before it.
        return await installAndVerify(name, paths, o, { ...run, follow: false, bootedAgain: true });
      }
      writeInstallStatus(paths, {
        phase: 'failed',
        step: 'stub boot',
        reason: e.message,
        log,
        attempt: run.attempt,
      });
    } else installStatus(paths); // records failed or interrupted, from the events
    throw e;
  } finally {
    rmSync(paths.packageCache, { force: true });
    rmSync(paths.sshHostKeys, { force: true });
    await forgetPassphrase?.undo();
  }
  guard!.release();
  writeInstallStatus(paths, { phase: 'installed', log, attempt: run.attempt });
  // A clone's source's passphrase: its container no longer takes it (kept until now for a resume).
  rmSync(paths.luksSourcePassphrase, { force: true });
  writeFileSync(paths.knownHosts, knownHostsLines(name, done.hostKeys), { mode: 0o600 });

  const port = readState(paths).sshPort;
  if (!port) throw new VmstubError(`${name} has no SSH port`);
  const sshStarted = Date.now();
  const banner = await waitForSshBanner(port, o.sshTimeoutSec * 1000, () => isRunning(paths));
  if (!banner)
    throw timeoutError(
      `${name} was installed but did not answer SSH within ${o.sshTimeoutSec} s; see vmstub console ${name} --log`,
    );
  const tryLogin = () =>
    spawnSync(
      requireTool('ssh', 'openssh-client'),
      sshArgs(
        instanceSshTarget(name, paths, port, def.sshUser),
        ['true'],
        ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30'],
      ),
      { encoding: 'utf8', timeout: 120_000 },
    );
  let login = tryLogin();
  // Seen once in a first boot under TCG: the banner came, then the next connection was closed before
  // its key exchange. A refused key or login is final; a connection cut before the exchange is tried
  // again, twice, a few seconds apart.
  for (let again = 0; again < 2 && login.status !== 0 && CUT_BEFORE_KEX.test(login.stderr ?? ''); again++) {
    await new Promise((r) => setTimeout(r, 3000));
    login = tryLogin();
  }
  if (login.status !== 0) {
    throw new VmstubError(
      `${name} answers SSH but the login failed: ${(login.stderr || '').trim().split('\n').pop() ?? `exit ${login.status}`}`,
    );
  }
  phases['boot to SSH'] = Math.round((Date.now() - sshStarted) / 100) / 10;
  let firstBoot: CreateResult['firstBoot'];
  const firstBootWait = waitForFirstBoot(spec);
  if (firstBootWait) {
    const firstBootStarted = Date.now();
    const what = [
      ...(spec.userData ? ['cloud-init'] : []),
      ...(spec.firstBoot.length ? [`its first-boot commands (${FIRST_BOOT_UNIT})`] : []),
    ].join(' and ');
    o.note(`${name}: waiting for ${what}`);
    // As any program vmstub runs: interrupted, create ends it (it may wait long).
    const wait = await runProgram(
      requireTool('ssh', 'openssh-client'),
      sshArgs(
        instanceSshTarget(name, paths, port, def.sshUser),
        [firstBootWait],
        ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30', '-o', 'ServerAliveInterval=30'],
      ),
    );
    firstBoot = wait.code === 0 ? 'done' : 'failed';
    if (firstBoot === 'failed')
      o.note(
        `${name}: ${what} failed: ${[
          ...(spec.userData ? [`vmstub ssh ${name} cloud-init status --long`] : []),
          ...(spec.firstBoot.length ? [`vmstub ssh ${name} journalctl -u ${FIRST_BOOT_UNIT}`] : []),
        ].join(' or ')} says why`,
      );
    phases['first-boot commands'] = Math.round((Date.now() - firstBootStarted) / 100) / 10;
  }
  return {
    name,
    distro: spec.distro,
    hostname: spec.hostname,
    sshPort: port,
    hostKeys: done.hostKeys,
    ...(firstBoot ? { firstBoot } : {}),
    phases,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

/** Reads the installer's events as they arrive, until the install is done (or failed, or the VM is gone). */
/** ssh's words for a connection that ended before the key exchange (not a refused key or login). */
const CUT_BEFORE_KEX = /kex_exchange_identification|Connection (closed|reset) by/;

/** The stub starts the install about 15 s after boot under TCG; this is many times that. */
const STUB_START_TIMEOUT_SEC = 600;

/** The stub itself failed (its kernel died, or it never started the install): the VM is of no more use. */
class StubDied extends VmstubError {
  constructor(
    message: string,
    /** Its kernel died before the install began: this boot wrote nothing to the disk. */
    readonly panickedBeforeInstall = false,
    code?: ExitCodeValue,
  ) {
    super(message, code);
  }
}

async function follow(
  paths: InstancePaths,
  o: CreateOptions,
  phases: Record<string, number>,
  started: number,
  consoleFrom: number,
): Promise<{ hostKeys: string[] }> {
  const logPath = paths.installLog;
  const name = basename(paths.dir);
  writeFileSync(logPath, '', { mode: 0o600 });
  let offset = 0;
  let rest = '';
  let stepStarted = Date.now();
  let result: { hostKeys: string[] } | undefined;
  let handedOver = false;
  let installStarted = false;
  let consoleOffset = consoleFrom;
  const deadline = Date.now() + 4 * 60 * 60 * 1000;
  const startDeadline = Date.now() + STUB_START_TIMEOUT_SEC * 1000;
  for (;;) {
    const size = existsSync(paths.events) ? statSync(paths.events).size : 0;
    if (size > offset) {
      const chunk = readFileSync(paths.events).subarray(offset).toString('utf8');
      offset = size;
      const { events, rest: left } = decodeEvents<InstallEvent | StubEvent>(rest + chunk);
      rest = left;
      for (const e of events) {
        o.onEvent(e);
        if (e.type === 'log') writeFileSync(logPath, `[${e.step}] ${e.line}\n`, { flag: 'a' });
        else if (e.type === 'install-start') {
          installStarted = true;
          phases['stub boot'] = Math.round((Date.now() - started) / 100) / 10;
          stepStarted = Date.now();
        } else if (e.type === 'step-start') stepStarted = Date.now();
        else if (e.type === 'step-end') phases[e.step] = Math.round((Date.now() - stepStarted) / 100) / 10;
        else if (e.type === 'install-failed') {
          const wayOn = e.diskFull
            ? `to start over on a larger disk: vmstub disk grow ${name} +4G, then vmstub resume ${name}`
            : `to start over: vmstub resume ${name}`;
          throw new VmstubError(
            `install failed at step ${e.step}: ${e.reason}; the VM stays in the stub (vmstub console ${name}); log: ${logPath}; ${wayOn}`,
            ExitCode.failure,
          );
        } else if (e.type === 'install-done') {
          result = { hostKeys: e.hostKeys };
          stepStarted = Date.now();
        } else if (e.type === 'handoff' && result) {
          if (e.status !== 'kexec' && e.status !== 'host-boot') {
            throw new VmstubError(
              `installed, but the handoff did not happen (${e.status}: ${e.reason}); vmstub console ${name}`,
            );
          }
          phases.handoff = Math.round((Date.now() - stepStarted) / 100) / 10;
          handedOver = true;
        }
      }
      if (result && handedOver) return result;
    }
    if (!isRunning(paths))
      throw new VmstubError(
        `the VM stopped during the install; see vmstub console ${name} --log; to start over: vmstub resume ${name}`,
      );
    // A stub whose kernel died says so only on its console; nothing else would ever arrive.
    const consoleSize = existsSync(paths.consoleLog) ? statSync(paths.consoleLog).size : 0;
    if (consoleSize < consoleOffset) consoleOffset = 0; // the bounded log was rotated
    if (consoleSize > consoleOffset) {
      const text = readFileSync(paths.consoleLog).subarray(consoleOffset).toString('utf8');
      consoleOffset = consoleSize;
      const panic = /Kernel panic - not syncing: [^\r\n]*/.exec(text)?.[0];
      if (panic && !handedOver)
        throw new StubDied(
          `the stub's kernel died (${panic.trim()}); see vmstub console ${name} --log; to try again: vmstub resume ${name}`,
          !installStarted,
        );
    }
    if (!installStarted && Date.now() > startDeadline)
      throw new StubDied(
        `the stub did not start the install within ${STUB_START_TIMEOUT_SEC} s; see vmstub console ${name} --log; to try again: vmstub resume ${name}`,
        false,
        ExitCode.timeout,
      );
    if (Date.now() > deadline) throw timeoutError('the install did not finish within 4 hours');
    o.tick?.();
    await new Promise((r) => setTimeout(r, 250));
  }
}
