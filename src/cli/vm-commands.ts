import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { ARCHES } from '../util/arch.js';
import { annotate, jsonOption, repeatable, stubOption, waitSshOption, wholeNumber } from './options.js';
import { machineFlag } from './spec-options.js';
import { formatTable, note, printJson } from './output.js';
import { onCleanup } from '../util/cleanup.js';
import { ExitCode, VmstubError, conflictError, oneLine, timeoutError, usageError } from '../util/errors.js';
import { requireTool, runChecked } from '../util/exec.js';
import { formatSize } from '../util/size.js';
import { decodeEvents } from '../events/protocol.js';
import { cidataVendorData, writeCidataIso } from '../cloud-init/cidata.js';
import { metaData } from '../cloud-init/seed.js';
import { readUserData } from '../cloud-init/user-data.js';
import { hintFwCfg, knownHostsLines } from '../installer/create.js';
import { describeInstallStatus, installStatus } from '../installer/install-state.js';
import { hostPublicKeys, hostTimezone } from '../installer/host-defaults.js';
import { attachConsole } from '../vm/console-client.js';
import { ACCELS, HANDOFFS, defaultHostname, validateName, type VmDefinition } from '../vm/definition.js';
import { buildDefinition, DEFAULTS } from '../vm/definition-builder.js';
import {
  describeInstance,
  describeOrBroken,
  formatUptime,
  stateLabel,
  type InstanceInfo,
} from '../vm/inspect.js';
import { startInstance } from '../vm/launch.js';
import { isRunning, stopInstance, type StopOutcome } from '../vm/lifecycle.js';
import { ensureInstanceKey, makeHostKeys, sshArgs, waitForSshBanner } from '../vm/ssh.js';
import { instanceSshTarget } from '../vm/ssh-config.js';
import { sshConfigCommand } from './ssh-config-command.js';
import { disableService, isServiceEnabled, unitName } from '../vm/service.js';
import { backingChain, dependentsOf } from '../installer/clone.js';
import {
  createInstance,
  instancePaths,
  keptDisksDir,
  listInstanceNames,
  loadDefinition,
  readState,
  removeInstance,
  runningSupervisor,
  saveDefinition,
} from '../vm/store.js';

const stubAppend = (stub: boolean | undefined): string[] => (stub ? ['vmstub.nokexec'] : []);

const runCommand = () =>
  new Command('run')
    .summary('create an instance from a system image (or a kernel) and boot it')
    .description(
      "Create an instance from a system image (or a kernel) and boot it. SYSTEM is a squashfs image carrying boot/kernel and boot/initramfs; it is attached read-only as a virtio disk with serial 'system'. Without --detach the serial console is on this terminal: Ctrl-] detaches (the VM keeps running), and the command ends when the VM does.",
    )
    .argument('[SYSTEM]', 'a system image (squashfs with boot/kernel and boot/initramfs)')
    .addOption(
      annotate(new Option('-n, --name <NAME>', 'instance name'), {
        defaultText: 'from the image, plus a random suffix',
      }),
    )
    .addOption(machineFlag('memory'))
    .addOption(machineFlag('cpus'))
    .option('--kernel <FILE>', 'boot this kernel instead of a system image')
    .option('--initrd <FILE>', 'initramfs for --kernel')
    .option(
      '--iso <FILE>',
      'boot this ISO from a CD drive (BIOS, or UEFI with --uefi; UEFI alone on aarch64) instead of a system image',
    )
    .option(
      '--boot-disk <DISK>',
      'boot this disk image (raw or qcow2: an ISO written to a disk, a cloud image) through the firmware instead of a system image; written to',
    )
    .addOption(
      annotate(
        new Option(
          '--arch <ARCH>',
          "the guest's architecture for --iso or --boot-disk (aarch64 boots through UEFI); a system image or kernel says its own",
        ).choices(ARCHES),
        { defaultText: "the host's" },
      ),
    )
    .option(
      '--cloud-init-iso <USER-DATA>',
      'attach a cloud-init NoCloud seed made from this #cloud-config (an ISO labelled cidata; meta-data names the instance and carries your SSH keys), for images that run cloud-init themselves',
    )
    .option('-d, --data <DISK>', 'data disk (raw or qcow2), seen as /dev/disk/by-id/virtio-data')
    .option('--volatile-data <SIZE>', 'a blank data disk of SIZE, deleted when the VM stops')
    .addOption(machineFlag('shares'))
    .addOption(machineFlag('forwards'))
    .addOption(machineFlag('autoForward'))
    .addOption(repeatable('--net <NET>', 'user (default), bridge:BRIDGE or tap:INTERFACE'))
    .addOption(repeatable('--append <ARGS>', 'extra kernel command line'))
    .addOption(repeatable('--fw-cfg <NAME=@FILE|NAME=STRING>', 'pass data through QEMU fw_cfg (under opt/)'))
    .option('--hvc', 'virtio console (hvc0) instead of a serial port')
    .option('--uefi', 'boot through UEFI firmware (found via QEMU firmware descriptors)')
    .addOption(
      annotate(
        new Option(
          '--handoff <HOW>',
          'how the stub starts an installed system: kexec, or host (the host starts QEMU again with the installed kernel)',
        ).choices(HANDOFFS),
        { defaultText: 'kexec; host on riscv64, whose stub has no kexec' },
      ),
    )
    .addOption(
      annotate(
        new Option('--accel <MODE>', 'accelerator; auto uses KVM only where it works')
          .choices(ACCELS)
          .env('VMSTUB_ACCEL'),
        { defaultText: 'auto' },
      ),
    )
    .addOption(
      annotate(new Option('--ssh-user <USER>', 'user for vmstub ssh'), { defaultText: DEFAULTS.sshUser }),
    )
    .addOption(
      annotate(
        new Option('--stop-timeout <SECONDS>', 'how long a stop waits for ACPI power-off').argParser(
          wholeNumber('--stop-timeout', 1, 3600),
        ),
        { defaultText: `${DEFAULTS.stopTimeoutSec} s` },
      ),
    )
    .option('--rm', 'remove the instance when it stops')
    .addOption(stubOption())
    .option('--detach', 'run in the background (console on a socket: vmstub console NAME)')
    .addOption(waitSshOption())
    .addOption(jsonOption('with --detach: the instance as show --json prints it'))
    .action(async (system, o) => {
      if (o.waitSsh !== undefined && !o.detach) throw usageError('--wait-ssh needs --detach');
      const def = buildDefinition({ ...o, system }, process.cwd());
      const userData =
        o.cloudInitIso === undefined ? undefined : readUserData(o.cloudInitIso, '--cloud-init-iso').text;
      const paths = createInstance(def);
      const unmake = onCleanup(`the new instance ${def.name}`, () => {
        if (existsSync(paths.dir) && !runningSupervisor(paths)) removeInstance(paths);
      });
      try {
        // Every VM is told the keys to authorize and the host's time zone (a stub's manual install uses them).
        const userKeys = hostPublicKeys();
        const keys = userKeys.length
          ? userKeys
          : [readFileSync(await ensureInstanceKey(paths.sshKey, `vmstub@${def.name}`), 'utf8').trim()];
        def.fwCfg.push(...hintFwCfg(paths, keys, hostTimezone()));
        if (userData !== undefined) {
          // The image's cloud-init puts in host keys made here, so its known_hosts is known from the start.
          const hostKeys = await makeHostKeys(def.name);
          await writeCidataIso(paths.cloudInitSeed, {
            userData,
            metaData: metaData(def.name, defaultHostname(def.name), keys),
            vendorData: cidataVendorData(hostKeys),
          });
          const publicKeys = Object.entries(hostKeys)
            .filter(([f]) => f.endsWith('.pub'))
            .map(([, k]) => k.trim());
          mkdirSync(dirname(paths.knownHosts), { recursive: true, mode: 0o700 });
          writeFileSync(paths.knownHosts, knownHostsLines(def.name, publicKeys), { mode: 0o600 });
          def.cloudInitSeed = paths.cloudInitSeed;
        }
        saveDefinition(def);
        await startInstance(def.name, note, { extraAppend: stubAppend(o.stub) });
        unmake.release();
      } catch (e) {
        await unmake.undo();
        throw e;
      }
      process.exitCode = o.detach
        ? await afterDetachedStart(def.name, o.json === true, o.waitSsh)
        : await foreground(def.name);
    });

function summaryLine(info: InstanceInfo): string {
  const d = info.definition;
  const parts = [
    `${info.accel === 'kvm' ? 'KVM' : 'TCG'}`,
    `${d.cpus} vCPU`,
    formatSize(d.memoryMiB * 1024 * 1024),
  ];
  if (info.sshPort) parts.push(`ssh on 127.0.0.1:${info.sshPort}`);
  return `${info.name} is running (${parts.join(', ')})`;
}

/** After a detached start: report, and optionally wait for SSH. */
async function afterDetachedStart(name: string, json: boolean, waitSec: number | undefined): Promise<number> {
  const info = describeInstance(name);
  if (waitSec !== undefined) {
    if (!info.sshPort) throw new VmstubError('--wait-ssh needs a user-mode network', ExitCode.usage);
    const paths = instancePaths(name);
    const banner = await waitForSshBanner(info.sshPort, waitSec * 1000, () => isRunning(paths));
    if (!banner) {
      const why = isRunning(paths) ? `no SSH answer within ${waitSec} s` : 'the VM stopped';
      throw timeoutError(`${name}: ${why}; see vmstub console ${name} --log`);
    }
  }
  if (json) printJson(describeInstance(name));
  else {
    process.stdout.write(summaryLine(info) + '\n');
    process.stdout.write(`  console: vmstub console ${name}    stop: vmstub stop ${name}\n`);
  }
  return ExitCode.ok;
}

/** Foreground: the console on this terminal until the VM ends (exit status from how it ended) or Ctrl-]. */
async function foreground(name: string): Promise<number> {
  const paths = instancePaths(name);
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    note(`stopping ${name}`);
    void stopInstance(name, { force: false, timeoutSec: loadDefinition(name).stopTimeoutSec });
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  if (process.stdin.isTTY) note(`console of ${name}; Ctrl-] detaches`);
  try {
    const how = await attachConsole(paths.console);
    if (how === 'detached') {
      process.stderr.write(
        `\nvmstub: detached; ${name} keeps running (vmstub console ${name}, vmstub stop ${name})\n`,
      );
      return ExitCode.ok;
    }
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
  for (let i = 0; i < 100 && runningSupervisor(paths); i++) await new Promise((r) => setTimeout(r, 50));
  const last = existsSync(paths.dir) ? readState(paths).lastExit : undefined;
  return last && !last.clean ? ExitCode.failure : ExitCode.ok;
}

const startCommand = () =>
  new Command('start')
    .summary('start an existing instance (in the background unless --console)')
    .argument('<NAME>', 'the instance')
    .option('--console', 'attach the console after starting (Ctrl-] detaches)')
    .addOption(stubOption())
    .addOption(waitSshOption())
    .addOption(jsonOption('without --console: the instance as show --json prints it'))
    .action(async (name, o) => {
      const install = installStatus(instancePaths(name));
      if (install && install.phase !== 'installed' && !o.stub)
        throw conflictError(
          `${name}'s install did not finish (${describeInstallStatus(install)}); vmstub resume ${name} goes on with it, vmstub start --stub ${name} boots the stub to look`,
        );
      encryptedRootStart(name, loadDefinition(name), o.console === true);
      await startInstance(name, note, { extraAppend: stubAppend(o.stub) });
      process.exitCode = o.console
        ? await foreground(name)
        : await afterDetachedStart(name, o.json === true, o.waitSsh);
    });

/**
 * An encrypted root before a start: the passphrase the host keeps must still be there (refused before
 * anything starts), and with unlock: console the user is told where the prompt is.
 */
function encryptedRootStart(name: string, def: VmDefinition, console_: boolean): void {
  if (!def.encryptedRoot) return;
  const file = instancePaths(name).luksPassphrase;
  if (def.encryptedRoot.unlock === 'host' && !existsSync(file))
    throw conflictError(
      `${name}'s root is encrypted and its passphrase file ${file} is gone; nothing was started`,
    );
  if (def.encryptedRoot.unlock === 'console')
    note(
      `${name}'s root is encrypted: type its passphrase at the console${console_ ? '' : ` (vmstub console ${name})`}`,
    );
}

const stopCommand = () =>
  new Command('stop')
    .summary('power an instance off: ACPI power button, then after the timeout QEMU quits')
    .argument('<NAME>', 'the instance')
    .option('-f, --force', 'quit QEMU at once, without asking the guest')
    .addOption(
      annotate(
        new Option('-t, --timeout <SECONDS>', 'how long to wait for the guest').argParser(
          wholeNumber('--timeout', 0, 3600),
        ),
        { defaultText: "the instance's stop timeout" },
      ),
    )
    .addOption(jsonOption('the outcome as JSON: {name, outcome, timeoutSec}'))
    .action(async (name, o) => {
      const def = loadDefinition(name);
      const timeoutSec = o.timeout ?? def.stopTimeoutSec;
      const outcome = await stopInstance(name, { force: o.force === true, timeoutSec });
      if (o.json) {
        printJson({ name, outcome, timeoutSec });
        return;
      }
      process.stdout.write(stopMessage(name, outcome, o.force === true, timeoutSec) + '\n');
    });

function stopMessage(name: string, outcome: StopOutcome, force: boolean, timeoutSec: number): string {
  return {
    'not-running': `${name} is not running`,
    'powered-off': `${name} powered off`,
    quit: force
      ? `${name} stopped (forced)`
      : `${name} did not power off within ${timeoutSec} s; QEMU was told to quit`,
    killed: `${name} did not respond; QEMU was killed`,
  }[outcome];
}

const stopallCommand = () =>
  new Command('stopall')
    .summary('stop every running instance at once, each as vmstub stop would')
    .option('-f, --force', 'quit QEMU at once, without asking the guests')
    .addOption(
      jsonOption(
        '[{name, outcome, timeoutSec}] for the instances that were running (outcome failed, with error, for one that could not be stopped)',
      ),
    )
    .action(async (o) => {
      const running = listInstanceNames().filter((n) => {
        try {
          return isRunning(instancePaths(n));
        } catch {
          return false;
        }
      });
      // One that cannot be stopped does not keep the others running: each is tried, failures said at the end.
      const results = await Promise.all(
        running.map(async (name) => {
          try {
            const timeoutSec = loadDefinition(name).stopTimeoutSec;
            const outcome = await stopInstance(name, { force: o.force === true, timeoutSec });
            if (!o.json)
              process.stdout.write(stopMessage(name, outcome, o.force === true, timeoutSec) + '\n');
            return { name, outcome, timeoutSec };
          } catch (e) {
            note(`${name}: not stopped: ${oneLine(e)}`);
            return { name, outcome: 'failed' as const, error: oneLine(e) };
          }
        }),
      );
      if (o.json) printJson(results);
      else if (!running.length) process.stdout.write('no instance is running\n');
      if (results.some((r) => r.outcome === 'failed')) process.exitCode = ExitCode.failure;
    });

const consoleCommand = () =>
  new Command('console')
    .summary("attach this terminal to a running instance's console (Ctrl-] detaches), or print its log")
    .argument('<NAME>', 'the instance')
    .option('--log', 'print the console log (kept for every boot, bounded) and exit')
    .action(async (name, o) => {
      loadDefinition(name);
      const paths = instancePaths(name);
      if (o.log) {
        for (const f of [`${paths.consoleLog}.1`, paths.consoleLog])
          if (existsSync(f)) process.stdout.write(readFileSync(f));
        return;
      }
      if (!isRunning(paths))
        throw conflictError(`${name} is not running (its log: vmstub console ${name} --log)`);
      if (process.stdin.isTTY) note(`console of ${name}; Ctrl-] detaches`);
      const how = await attachConsole(paths.console);
      if (how === 'closed') process.stderr.write(`\nvmstub: ${name} stopped\n`);
    });

const listCommand = () =>
  new Command('list')
    .summary('list instances')
    .addOption(jsonOption('every instance as JSON (as show --json), broken ones with their error'))
    .action(async (o) => {
      const infos = listInstanceNames().map((n) => describeOrBroken(n));
      if (o.json) {
        printJson(infos);
        return;
      }
      const rows = infos.map((i) =>
        i.state === 'broken'
          ? [i.name, 'broken', '-', '-', '-', '-', '-', i.error]
          : [
              i.name,
              stateLabel(i),
              i.accel ?? '-',
              String(i.definition.cpus),
              formatSize(i.definition.memoryMiB * 1024 * 1024),
              i.sshPort ? `127.0.0.1:${i.sshPort}` : '-',
              formatUptime(i.uptimeSec),
              i.definition.system ??
                i.definition.iso ??
                i.definition.bootDisk?.path ??
                i.definition.kernel ??
                '',
            ],
      );
      process.stdout.write(
        formatTable(['NAME', 'STATE', 'ACCEL', 'CPUS', 'MEMORY', 'SSH', 'UPTIME', 'SYSTEM'], rows),
      );
    });

const showCommand = () =>
  new Command('show')
    .summary('show one instance: definition, state, sockets and logs')
    .argument('<NAME>', 'the instance')
    .addOption(
      jsonOption('the instance as JSON: {name, state, definition, paths, accel, sshPort, install, ...}'),
    )
    .action(async (name, o) => {
      const info = describeInstance(name);
      if (o.json) {
        printJson(info);
        return;
      }
      const d = info.definition;
      const rows: [string, string][] = [
        ['name', info.name],
        ['state', info.state + (info.uptimeSec !== undefined ? ` for ${formatUptime(info.uptimeSec)}` : '')],
        [
          'system',
          d.system ??
            (d.iso
              ? `ISO ${d.iso}`
              : d.bootDisk
                ? `boot disk ${d.bootDisk.path}`
                : `kernel ${d.kernel}${d.initrd ? `, initrd ${d.initrd}` : ''}`),
        ],
        ['memory', formatSize(d.memoryMiB * 1024 * 1024)],
        ['cpus', String(d.cpus)],
        ['accel', info.accel ?? d.accel],
        [
          'data',
          d.data
            ? `${d.data.path} (${d.data.format})`
            : d.volatileDataBytes
              ? `volatile ${formatSize(d.volatileDataBytes)}`
              : '-',
        ],
        [
          'shares',
          d.shares
            .map(
              (s) => `${s.path} as ${s.tag}${info.shareModes?.[s.tag] ? ` (${info.shareModes[s.tag]})` : ''}`,
            )
            .join(', ') || '-',
        ],
        [
          'network',
          d.nets
            .map((n) =>
              n.kind === 'user' ? 'user' : n.kind === 'bridge' ? `bridge:${n.bridge}` : `tap:${n.ifname}`,
            )
            .join(', '),
        ],
        ['ssh', info.sshPort ? `127.0.0.1:${info.sshPort} (vmstub ssh ${info.name})` : '-'],
        [
          'forwards',
          d.hostfwds.map((f) => `${f.hostAddr}:${f.hostPort}->${f.guestPort}/${f.protocol}`).join(', ') ||
            '-',
        ],
        ['pid', info.qemuPid ? `qemu ${info.qemuPid}, supervisor ${info.supervisorPid}` : '-'],
        ['service', isServiceEnabled(info.name) ? `${unitName(info.name)}, enabled` : '-'],
        ['last exit', info.lastExit ? `${info.lastExit.at}: ${info.lastExit.reason}` : '-'],
        [
          'install',
          info.install
            ? `${describeInstallStatus(info.install)}${info.install.reason ? `: ${info.install.reason}` : ''} (log: ${info.install.log})`
            : '-',
        ],
        ['directory', info.paths.dir],
        ['qmp', info.paths.qmp],
        ['console', info.paths.console],
        ['console log', info.paths.consoleLog],
        ['qemu log', info.paths.qemuLog],
      ];
      process.stdout.write(rows.map(([k, v]) => `${(k + ':').padEnd(13)}${v}`).join('\n') + '\n');
    });

/**
 * Host keys an install reported over the events channel (a manual ./DISTRO.sh in the stub has no
 * vmstub create listening): recorded for strict checking, never learnt from the network.
 */
function learnInstalledHostKeys(name: string, paths: ReturnType<typeof instancePaths>): void {
  for (const f of [paths.events, `${paths.events}.1`]) {
    if (!existsSync(f)) continue;
    const done = decodeEvents<{ type: string; hostKeys?: string[] }>(readFileSync(f, 'utf8')).events.filter(
      (e) => e.type === 'install-done' && e.hostKeys?.length,
    );
    const last = done.at(-1);
    if (last) {
      writeFileSync(paths.knownHosts, knownHostsLines(name, last.hostKeys!), { mode: 0o600 });
      return;
    }
  }
}

const sshCommand = () =>
  new Command('ssh')
    .summary(
      "SSH into a running instance through its forwarded port, checking the host key against the instance's own known_hosts",
    )
    .usage('[options] NAME [-- COMMAND...]')
    .argument('<NAME>', 'the instance')
    .argument('[COMMAND...]', 'a command to run instead of a login shell (after --)')
    .addOption(
      annotate(new Option('-l, --user <USER>', 'log in as USER'), { defaultText: "the instance's ssh user" }),
    )
    .option('--accept-new', 'trust and record the host key the guest presents, when none is recorded yet')
    .addOption(jsonOption('a refusal as JSON on stdout (ssh itself owns the terminal once it runs)'))
    .action(async (name, command, o) => {
      const def = loadDefinition(name);
      const paths = instancePaths(name);
      if (!isRunning(paths)) throw conflictError(`${name} is not running (vmstub start ${name})`);
      const port = readState(paths).sshPort;
      if (!port) throw conflictError(`${name} has no user-mode network, so no forwarded SSH port`);
      learnInstalledHostKeys(name, paths);
      const known = existsSync(paths.knownHosts) && statSync(paths.knownHosts).size > 0;
      if (!known && !o.acceptNew) {
        throw conflictError(
          `no SSH host key is recorded for ${name}; to trust the key it presents now, run: vmstub ssh --accept-new ${name}`,
        );
      }
      const args = sshArgs(
        instanceSshTarget(name, paths, port, o.user ?? def.sshUser),
        command,
        known ? [] : ['-o', 'StrictHostKeyChecking=accept-new'],
      );
      const child = spawn(requireTool('ssh', 'openssh-client'), args, { stdio: 'inherit' });
      process.exitCode = await new Promise<number>((resolve) =>
        child.on('exit', (code) => resolve(code ?? ExitCode.failure)),
      );
    });

/** A free name in keptDisksDir() for an instance's disk: NAME-STAMP.EXT, then NAME-STAMP-2.EXT, ... */
function keptDiskTarget(name: string, ext: string): string {
  mkdirSync(keptDisksDir(), { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  let target = join(keptDisksDir(), `${name}-${stamp}${ext}`);
  for (let n = 2; existsSync(target); n++) target = join(keptDisksDir(), `${name}-${stamp}-${n}${ext}`);
  return target;
}

/** A copy-on-write disk (a clone's, or a source's since it was cloned), kept as one raw image. */
async function flattenDisk(name: string, disk: string): Promise<string> {
  const target = keptDiskTarget(name, '.img');
  await runChecked(requireTool('qemu-img', 'qemu-utils'), ['convert', '-U', '-O', 'raw', disk, target]);
  return target;
}

/** A disk inside the instance directory would go with it: it moves to keptDisksDir() instead. */
function keepDisk(name: string, disk: string): string {
  const target = keptDiskTarget(name, extname(disk) || '.img');
  renameSync(disk, target);
  return target;
}

const rmCommand = () =>
  new Command('rm')
    .summary(
      'remove a stopped instance; its disk images stay on the host (moved out of the instance) unless --disks',
    )
    .argument('<NAME>', 'the instance')
    .option('--disks', "also delete the instance's data disk image")
    .addOption(jsonOption('what happened as JSON: {removed, keptDisks, deletedDisks}'))
    .action(async (name, o) => {
      validateName(name);
      const paths = instancePaths(name);
      if (!existsSync(paths.dir)) throw conflictError(`no instance named ${name}`);
      let def: VmDefinition | undefined;
      try {
        def = loadDefinition(name);
      } catch {
        def = undefined; // a damaged instance can still be removed; its disks are still kept
      }
      if (isRunning(paths)) throw conflictError(`${name} is running; stop it first (vmstub stop ${name})`);
      const dependents = await dependentsOf(paths);
      if (dependents.length)
        throw conflictError(
          `${name}'s disk is under its clones' (${dependents.join(', ')}); remove them first (vmstub rm ${dependents[0]})`,
        );
      const disks = new Set<string>();
      // A copy-on-write disk's layers are kept as one flattened image, and not one by one.
      const layered =
        def?.data?.format === 'qcow2' && existsSync(def.data.path) ? await backingChain(def.data.path) : [];
      if (def?.data) disks.add(resolve(def.data.path));
      const created = paths.createdDisk;
      if (existsSync(created) && !layered.includes(created)) disks.add(created);
      const kept: { disk: string; from?: string }[] = [];
      const deleted: string[] = [];
      for (const disk of disks) {
        if (!existsSync(disk)) continue;
        const own = disk.startsWith(`${paths.dir}/`);
        if (o.disks) {
          if (!own && layered.length > 1) continue; // not ours to delete: outside the instance, layered
          rmSync(disk);
          deleted.push(disk);
        } else if (own && layered.length > 1 && disk === layered[0]) {
          kept.push({ disk: await flattenDisk(name, disk), from: disk });
        } else if (own) {
          kept.push({ disk: keepDisk(name, disk), from: disk });
        } else kept.push({ disk });
      }
      // The frozen layers inside the instance go with it: flattened into the kept image, or asked for.
      if (o.disks) deleted.push(...layered.slice(1).filter((f) => f.startsWith(`${paths.dir}/`)));
      removeInstance(paths);
      // An enabled unit would only be skipped at boot (its condition fails), but it would linger.
      try {
        disableService(name);
      } catch (e) {
        note(`${name} is removed, but its systemd unit link was not: ${oneLine(e)}`);
      }
      if (o.json) {
        printJson({ removed: name, keptDisks: kept.map((k) => k.disk), deletedDisks: deleted });
        return;
      }
      for (const k of kept)
        process.stdout.write(
          `kept disk ${k.disk}${k.from?.endsWith('.qcow2') ? ' (its copy-on-write layers flattened into one image)' : k.from ? ' (moved out of the instance)' : ''}\n`,
        );
      process.stdout.write(
        `removed instance ${name}${deleted.length ? ` and disk ${deleted.join(', ')}` : ''}\n`,
      );
    });

export const vmCommands = () => [
  runCommand(),
  startCommand(),
  stopCommand(),
  stopallCommand(),
  consoleCommand(),
  listCommand(),
  showCommand(),
  sshCommand(),
  sshConfigCommand(),
  rmCommand(),
];
