import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeEvents, type StubEvent } from '../events/protocol.js';
import { imagesDir, stubImagePath } from '../image/locations.js';
import { buildStub, DEFAULT_DEBIAN_MIRROR, DEFAULT_DEBIAN_SECURITY_MIRROR } from '../image/stub.js';
import { ExitCode, VmstubError, timeoutError } from '../util/errors.js';
import { requireTool } from '../util/exec.js';
import { hostArch } from '../vm/accel.js';
import { allocateDisk } from '../vm/allocate.js';
import { FW_CFG_PREFIX, validateName, type VmDefinition } from '../vm/definition.js';
import { DEFAULTS } from '../vm/definition-builder.js';
import { startInstance } from '../vm/launch.js';
import { isRunning } from '../vm/lifecycle.js';
import { sshArgs, waitForSshBanner, ensureInstanceKey } from '../vm/ssh.js';
import {
  createInstance,
  readState,
  removeInstance,
  runningSupervisor,
  type InstancePaths,
} from '../vm/store.js';
import type { InstallEvent } from './execute.js';
import { hostPublicKeys, hostTimezone } from './host-defaults.js';
import { buildPlan } from './plan.js';
import { resolveSpec, type InstallSpec, type SpecInput } from './spec.js';

export interface CreateOptions {
  name: string;
  input: SpecInput;
  /** Where the spec came from, for messages: a file name, or "flags". */
  where: string;
  diskBytes: number;
  memoryMiB?: number;
  cpus?: number;
  /** How long to wait for a real SSH login after the install. */
  sshTimeoutSec: number;
  note: (text: string) => void;
  onEvent: (e: InstallEvent | StubEvent) => void;
  tick?: () => void;
}

export interface CreateResult {
  name: string;
  distro: string;
  hostname: string;
  sshPort: number;
  hostKeys: string[];
  /** Seconds for each phase: stub boot, each install step, handoff, boot to SSH. */
  phases: Record<string, number>;
  seconds: number;
}

/** The hints every stub boot gets: the keys to authorize and the host's time zone. */
export function hintFwCfg(paths: InstancePaths, keys: string[], timezone: string): VmDefinition['fwCfg'] {
  const keysFile = join(paths.sshDir, 'authorized_keys');
  writeFileSync(keysFile, keys.join('\n') + '\n', { mode: 0o600 });
  return [
    { name: `${FW_CFG_PREFIX}ssh-authorized-keys`, file: keysFile },
    { name: `${FW_CFG_PREFIX}timezone`, string: timezone },
  ];
}

/** Host keys as known_hosts lines under the instance's alias, so strict checking works whatever the port. */
export function knownHostsLines(name: string, hostKeys: string[]): string {
  return hostKeys.map((k) => `vmstub-${name} ${k}`).join('\n') + '\n';
}

/** Resolves create's spec; throws a usage error before anything exists. */
export function createSpec(o: Pick<CreateOptions, 'name' | 'input' | 'where'>, keys: string[]): InstallSpec {
  validateName(o.name);
  const spec = resolveSpec(
    o.input,
    {
      hostname: o.name.replace(/[._]/g, '-'),
      timezone: hostTimezone(),
      sshKeys: keys,
      arch: hostArch() ?? 'x86_64',
    },
    o.where,
  );
  buildPlan(spec);
  return spec;
}

/**
 * vmstub create: validates everything, builds the stub image if there is none, allocates the disk,
 * boots the stub with the install spec in fw_cfg, follows the installer's events, records the new
 * system's host key, and waits for a real SSH login. A failed install leaves the VM in the stub.
 */
export async function createWithInstall(o: CreateOptions): Promise<CreateResult> {
  const started = Date.now();
  const spec = createSpec(o, hostPublicKeys());

  const stub = stubImagePath(spec.arch);
  const phases: Record<string, number> = {};
  let bootStarted = started;
  if (!existsSync(stub)) {
    o.note(`no stub image yet: building ${stub} (once; a few minutes)`);
    await buildStub({
      arch: spec.arch,
      outDir: imagesDir(),
      mirrors: { mirror: DEFAULT_DEBIAN_MIRROR, securityMirror: DEFAULT_DEBIAN_SECURITY_MIRROR },
      progress: (l) => o.note(`stub: ${l}`),
    });
    bootStarted = Date.now();
    phases['stub build'] = Math.round((bootStarted - started) / 100) / 10;
  }

  const def: VmDefinition = {
    version: 1,
    name: o.name,
    system: stub,
    memoryMiB: o.memoryMiB ?? DEFAULTS.memoryMiB,
    cpus: o.cpus ?? DEFAULTS.cpus,
    shares: [],
    nets: [{ kind: 'user' }],
    hostfwds: [],
    append: [],
    fwCfg: [],
    hvc: false,
    uefi: false,
    accel: 'auto',
    sshUser: spec.users.find((u) => u.sudo)?.name ?? 'root',
    stopTimeoutSec: DEFAULTS.stopTimeoutSec,
    ephemeral: false,
    createdAt: new Date().toISOString(),
  };
  const paths = createInstance(def);
  let started_install = false;
  try {
    if (!spec.root.sshKeys.length) {
      // The user has no keys of their own: a key for this instance, which vmstub ssh uses, for root
      // and for every account that would otherwise have no way in.
      const key = readFileSync(await ensureInstanceKey(paths.sshKey, `vmstub@${o.name}`), 'utf8').trim();
      spec.root.sshKeys = [key];
      for (const u of spec.users) if (!u.sshKeys.length && !u.passwordHash) u.sshKeys = [key];
    }
    const disk = join(paths.dir, 'disk.img');
    await allocateDisk(disk, o.diskBytes, 'raw');
    def.data = { path: disk, format: 'raw' };
    def.fwCfg = hintFwCfg(paths, spec.root.sshKeys, spec.timezone);
    writeFileSync(paths.definition, JSON.stringify(def, null, 2) + '\n', { mode: 0o600 });
    const specFile = join(paths.dir, 'install-spec.json');
    writeFileSync(specFile, JSON.stringify(spec, null, 2) + '\n', { mode: 0o600 });
    await startInstance(o.name, o.note, {
      extraFwCfg: [{ name: `${FW_CFG_PREFIX}install-spec`, file: specFile }],
    });
    started_install = true;
  } catch (e) {
    if (!started_install && !runningSupervisor(paths)) removeInstance(paths);
    throw e;
  }

  const done = await follow(paths, o, phases, bootStarted);
  writeFileSync(paths.knownHosts, knownHostsLines(o.name, done.hostKeys), { mode: 0o600 });

  const port = readState(paths).sshPort;
  if (!port) throw new VmstubError(`${o.name} has no SSH port`);
  const sshStarted = Date.now();
  const banner = await waitForSshBanner(port, o.sshTimeoutSec * 1000, () => isRunning(paths));
  if (!banner)
    throw timeoutError(
      `${o.name} was installed but did not answer SSH within ${o.sshTimeoutSec} s; see vmstub console ${o.name} --log`,
    );
  const login = spawnSync(
    requireTool('ssh', 'openssh-client'),
    sshArgs(
      {
        port,
        user: def.sshUser,
        knownHosts: paths.knownHosts,
        hostKeyAlias: `vmstub-${o.name}`,
        identity: existsSync(paths.sshKey) ? paths.sshKey : undefined,
      },
      ['true'],
      ['-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30'],
    ),
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (login.status !== 0) {
    throw new VmstubError(
      `${o.name} answers SSH but the login failed: ${(login.stderr || '').trim().split('\n').pop() ?? `exit ${login.status}`}`,
    );
  }
  phases['boot to SSH'] = Math.round((Date.now() - sshStarted) / 100) / 10;
  return {
    name: o.name,
    distro: spec.distro,
    hostname: spec.hostname,
    sshPort: port,
    hostKeys: done.hostKeys,
    phases,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

/** Reads the installer's events as they arrive, until the install is done (or failed, or the VM is gone). */
async function follow(
  paths: InstancePaths,
  o: CreateOptions,
  phases: Record<string, number>,
  started: number,
): Promise<{ hostKeys: string[] }> {
  const logPath = join(paths.dir, 'install.log');
  writeFileSync(logPath, '', { mode: 0o600 });
  let offset = 0;
  let rest = '';
  let stepStarted = Date.now();
  let result: { hostKeys: string[] } | undefined;
  let handedOver = false;
  const deadline = Date.now() + 4 * 60 * 60 * 1000;
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
          phases['stub boot'] = Math.round((Date.now() - started) / 100) / 10;
          stepStarted = Date.now();
        } else if (e.type === 'step-start') stepStarted = Date.now();
        else if (e.type === 'step-end') phases[e.step] = Math.round((Date.now() - stepStarted) / 100) / 10;
        else if (e.type === 'install-failed') {
          throw new VmstubError(
            `install failed at step ${e.step}: ${e.reason}; the VM stays in the stub (vmstub console ${paths.dir.split('/').pop()}); log: ${logPath}`,
            ExitCode.failure,
          );
        } else if (e.type === 'install-done') {
          result = { hostKeys: e.hostKeys };
          stepStarted = Date.now();
        } else if (e.type === 'handoff' && result) {
          if (e.status !== 'kexec') {
            throw new VmstubError(
              `installed, but the handoff did not happen (${e.status}: ${e.reason}); vmstub console ${paths.dir.split('/').pop()}`,
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
        `the VM stopped during the install; see vmstub console ${paths.dir.split('/').pop()} --log`,
      );
    if (Date.now() > deadline) throw timeoutError('the install did not finish within 4 hours');
    o.tick?.();
    await new Promise((r) => setTimeout(r, 250));
  }
}
