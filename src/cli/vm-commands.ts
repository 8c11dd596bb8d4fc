import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { formatHelp, flag, intOption, list, str, type CommandSpec, type ParsedArgs } from './args.js';
import { formatTable, note, printJson } from './output.js';
import { onCleanup } from '../util/cleanup.js';
import { ExitCode, VmstubError, conflictError, timeoutError } from '../util/errors.js';
import { requireTool } from '../util/exec.js';
import { formatSize } from '../util/size.js';
import { decodeEvents } from '../events/protocol.js';
import { CREATED_DISK, hintFwCfg, knownHostsLines } from '../installer/create.js';
import { describeInstallStatus, installStatus } from '../installer/install-state.js';
import { hostPublicKeys, hostTimezone } from '../installer/host-defaults.js';
import { attachConsole } from '../vm/console-client.js';
import { validateName, type VmDefinition } from '../vm/definition.js';
import { buildDefinition, DEFAULTS } from '../vm/definition-builder.js';
import {
  describeInstance,
  describeOrBroken,
  formatUptime,
  stateLabel,
  type InstanceInfo,
} from '../vm/inspect.js';
import { startInstance } from '../vm/launch.js';
import { isRunning, stopInstance } from '../vm/lifecycle.js';
import { ensureInstanceKey, sshArgs, waitForSshBanner } from '../vm/ssh.js';
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

export interface Command {
  spec: CommandSpec;
  run(args: ParsedArgs): Promise<number>;
}

const JSON_OPT = { name: 'json', takes: 'flag', help: 'machine-readable output' } as const;
const WAIT_SSH_OPT = {
  name: 'wait-ssh',
  takes: 'optional',
  valueName: 'SECONDS',
  help: 'with --detach: wait until the guest answers with an SSH banner (default 120 s)',
} as const;

const STUB_OPT = {
  name: 'stub',
  takes: 'flag',
  help: 'this boot only: stay in the stub even when a system is installed (vmstub.nokexec), for repair',
} as const;

const stubAppend = (a: ParsedArgs): string[] => (flag(a, 'stub') ? ['vmstub.nokexec'] : []);

const runSpec: CommandSpec = {
  name: 'run',
  summary: 'Create an instance from a system image (or a kernel) and boot it.',
  usage: '[options] [SYSTEM]',
  positionals: [{ name: 'SYSTEM', optional: true }],
  details:
    'SYSTEM is a squashfs image carrying boot/kernel and boot/initramfs; it is attached read-only as a virtio\n' +
    "disk with serial 'system'. Without --detach the serial console is on this terminal: Ctrl-] detaches\n" +
    '(the VM keeps running), and the command ends when the VM does.',
  options: [
    {
      name: 'name',
      short: 'n',
      takes: 'value',
      valueName: 'NAME',
      help: 'instance name (default: from the image, plus a random suffix)',
    },
    {
      name: 'memory',
      short: 'm',
      takes: 'value',
      valueName: 'SIZE',
      help: `guest memory: MiB, or with a unit (default ${DEFAULTS.memoryMiB})`,
    },
    {
      name: 'cpus',
      short: 'c',
      takes: 'value',
      valueName: 'N',
      help: `virtual CPUs (default ${DEFAULTS.cpus})`,
    },
    { name: 'kernel', takes: 'value', valueName: 'FILE', help: 'boot this kernel instead of a system image' },
    { name: 'initrd', takes: 'value', valueName: 'FILE', help: 'initramfs for --kernel' },
    {
      name: 'data',
      short: 'd',
      takes: 'value',
      valueName: 'DISK',
      help: 'data disk (raw or qcow2), seen as /dev/disk/by-id/virtio-data',
    },
    {
      name: 'volatile-data',
      takes: 'value',
      valueName: 'SIZE',
      help: 'a blank data disk of SIZE, deleted when the VM stops',
    },
    {
      name: 'share',
      takes: 'value',
      repeat: true,
      valueName: 'DIR[:TAG]',
      help: 'share a host directory (virtiofs where virtiofsd runs, else 9p); tag defaults to fs',
    },
    {
      name: 'hostfwd',
      takes: 'value',
      repeat: true,
      valueName: 'SPEC',
      help: 'forward [ADDR:]HOSTPORT:GUESTPORT[/udp] (host side defaults to 127.0.0.1)',
    },
    {
      name: 'net',
      takes: 'value',
      repeat: true,
      valueName: 'NET',
      help: 'user (default), bridge:BRIDGE or tap:INTERFACE',
    },
    { name: 'append', takes: 'value', repeat: true, valueName: 'ARGS', help: 'extra kernel command line' },
    {
      name: 'fw-cfg',
      takes: 'value',
      repeat: true,
      valueName: 'NAME=@FILE|NAME=STRING',
      help: 'pass data through QEMU fw_cfg (under opt/)',
    },
    { name: 'hvc', takes: 'flag', help: 'virtio console (hvc0) instead of a serial port' },
    { name: 'uefi', takes: 'flag', help: 'boot through UEFI firmware (found via QEMU firmware descriptors)' },
    {
      name: 'accel',
      takes: 'value',
      valueName: 'auto|kvm|tcg',
      help: 'accelerator; auto uses KVM only where it works (default auto)',
    },
    {
      name: 'ssh-user',
      takes: 'value',
      valueName: 'USER',
      help: `user for vmstub ssh (default ${DEFAULTS.sshUser})`,
    },
    {
      name: 'stop-timeout',
      takes: 'value',
      valueName: 'SECONDS',
      help: `how long a stop waits for ACPI power-off (default ${DEFAULTS.stopTimeoutSec})`,
    },
    { name: 'rm', takes: 'flag', help: 'remove the instance when it stops' },
    STUB_OPT,
    {
      name: 'detach',
      takes: 'flag',
      help: 'run in the background (console on a socket: vmstub console NAME)',
    },
    WAIT_SSH_OPT,
    JSON_OPT,
  ],
};

function waitSshSeconds(a: ParsedArgs): number | undefined {
  const v = a.values.get('wait-ssh');
  if (v === undefined) return undefined;
  if (v === true) return 120;
  if (typeof v === 'string' && /^\d+$/.test(v) && Number(v) > 0) return Number(v);
  throw new VmstubError(`--wait-ssh '${String(v)}' must be a whole number of seconds`, ExitCode.usage);
}

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

const run: Command = {
  spec: runSpec,
  async run(a) {
    const waitSec = waitSshSeconds(a);
    const detach = flag(a, 'detach');
    if (waitSec !== undefined && !detach) throw new VmstubError('--wait-ssh needs --detach', ExitCode.usage);
    const def = buildDefinition(
      {
        name: str(a, 'name'),
        system: a.positionals[0],
        kernel: str(a, 'kernel'),
        initrd: str(a, 'initrd'),
        memory: str(a, 'memory'),
        cpus: intOption(a, 'cpus', 1, 64),
        data: str(a, 'data'),
        volatileData: str(a, 'volatile-data'),
        shares: list(a, 'share'),
        hostfwds: list(a, 'hostfwd'),
        nets: list(a, 'net'),
        append: list(a, 'append'),
        fwCfg: list(a, 'fw-cfg'),
        hvc: flag(a, 'hvc'),
        uefi: flag(a, 'uefi'),
        accel: str(a, 'accel'),
        sshUser: str(a, 'ssh-user'),
        stopTimeoutSec: intOption(a, 'stop-timeout', 1, 3600),
        ephemeral: flag(a, 'rm'),
      },
      process.cwd(),
    );
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
      saveDefinition(def);
      await startInstance(def.name, note, { extraAppend: stubAppend(a) });
      unmake.release();
    } catch (e) {
      await unmake.undo();
      throw e;
    }
    return detach ? afterDetachedStart(def.name, flag(a, 'json'), waitSec) : foreground(def.name);
  },
};

const start: Command = {
  spec: {
    name: 'start',
    summary: 'Start an existing instance (in the background unless --console).',
    usage: '[options] NAME',
    positionals: [{ name: 'NAME' }],
    options: [
      { name: 'console', takes: 'flag', help: 'attach the console after starting (Ctrl-] detaches)' },
      STUB_OPT,
      WAIT_SSH_OPT,
      JSON_OPT,
    ],
  },
  async run(a) {
    const name = a.positionals[0]!;
    const waitSec = waitSshSeconds(a);
    const install = installStatus(instancePaths(name));
    if (install && install.phase !== 'installed' && !flag(a, 'stub'))
      throw conflictError(
        `${name}'s install did not finish (${describeInstallStatus(install)}); vmstub resume ${name} goes on with it, vmstub start --stub ${name} boots the stub to look`,
      );
    await startInstance(name, note, { extraAppend: stubAppend(a) });
    return flag(a, 'console') ? foreground(name) : afterDetachedStart(name, flag(a, 'json'), waitSec);
  },
};

const stop: Command = {
  spec: {
    name: 'stop',
    summary: 'Power an instance off: ACPI power button, then after the timeout QEMU quits.',
    usage: '[options] NAME',
    positionals: [{ name: 'NAME' }],
    options: [
      { name: 'force', short: 'f', takes: 'flag', help: 'quit QEMU at once, without asking the guest' },
      {
        name: 'timeout',
        short: 't',
        takes: 'value',
        valueName: 'SECONDS',
        help: "how long to wait for the guest (default: the instance's stop timeout)",
      },
    ],
  },
  async run(a) {
    const name = a.positionals[0]!;
    const def = loadDefinition(name);
    const timeoutSec = intOption(a, 'timeout', 0, 3600) ?? def.stopTimeoutSec;
    const outcome = await stopInstance(name, { force: flag(a, 'force'), timeoutSec });
    const messages = {
      'not-running': `${name} is not running`,
      'powered-off': `${name} powered off`,
      quit: flag(a, 'force')
        ? `${name} stopped (forced)`
        : `${name} did not power off within ${timeoutSec} s; QEMU was told to quit`,
      killed: `${name} did not respond; QEMU was killed`,
    };
    process.stdout.write(messages[outcome] + '\n');
    return ExitCode.ok;
  },
};

const consoleCmd: Command = {
  spec: {
    name: 'console',
    summary: "Attach this terminal to a running instance's console (Ctrl-] detaches), or print its log.",
    usage: '[options] NAME',
    positionals: [{ name: 'NAME' }],
    options: [
      { name: 'log', takes: 'flag', help: 'print the console log (kept for every boot, bounded) and exit' },
    ],
  },
  async run(a) {
    const name = a.positionals[0]!;
    loadDefinition(name);
    const paths = instancePaths(name);
    if (flag(a, 'log')) {
      for (const f of [`${paths.consoleLog}.1`, paths.consoleLog])
        if (existsSync(f)) process.stdout.write(readFileSync(f));
      return ExitCode.ok;
    }
    if (!isRunning(paths))
      throw conflictError(`${name} is not running (its log: vmstub console ${name} --log)`);
    if (process.stdin.isTTY) note(`console of ${name}; Ctrl-] detaches`);
    const how = await attachConsole(paths.console);
    if (how === 'closed') process.stderr.write(`\nvmstub: ${name} stopped\n`);
    return ExitCode.ok;
  },
};

const listCmd: Command = {
  spec: { name: 'list', summary: 'List instances.', usage: '[--json]', positionals: [], options: [JSON_OPT] },
  async run(a) {
    const infos = listInstanceNames().map((n) => describeOrBroken(n));
    if (flag(a, 'json')) {
      printJson(infos);
      return ExitCode.ok;
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
            i.definition.system ?? i.definition.kernel ?? '',
          ],
    );
    process.stdout.write(
      formatTable(['NAME', 'STATE', 'ACCEL', 'CPUS', 'MEMORY', 'SSH', 'UPTIME', 'SYSTEM'], rows),
    );
    return ExitCode.ok;
  },
};

const show: Command = {
  spec: {
    name: 'show',
    summary: 'Show one instance: definition, state, sockets and logs.',
    usage: '[--json] NAME',
    positionals: [{ name: 'NAME' }],
    options: [JSON_OPT],
  },
  async run(a) {
    const info = describeInstance(a.positionals[0]!);
    if (flag(a, 'json')) {
      printJson(info);
      return ExitCode.ok;
    }
    const d = info.definition;
    const rows: [string, string][] = [
      ['name', info.name],
      ['state', info.state + (info.uptimeSec !== undefined ? ` for ${formatUptime(info.uptimeSec)}` : '')],
      ['system', d.system ?? `kernel ${d.kernel}${d.initrd ? `, initrd ${d.initrd}` : ''}`],
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
        d.hostfwds.map((f) => `${f.hostAddr}:${f.hostPort}->${f.guestPort}/${f.protocol}`).join(', ') || '-',
      ],
      ['pid', info.qemuPid ? `qemu ${info.qemuPid}, supervisor ${info.supervisorPid}` : '-'],
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
    return ExitCode.ok;
  },
};

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

const ssh: Command = {
  spec: {
    name: 'ssh',
    summary:
      "SSH into a running instance through its forwarded port, checking the host key against the instance's own known_hosts.",
    usage: '[options] NAME [-- COMMAND...]',
    positionals: [{ name: 'NAME' }],
    passthrough: true,
    options: [
      {
        name: 'user',
        short: 'l',
        takes: 'value',
        valueName: 'USER',
        help: "log in as USER (default: the instance's ssh user)",
      },
      {
        name: 'accept-new',
        takes: 'flag',
        help: 'trust and record the host key the guest presents, when none is recorded yet',
      },
    ],
  },
  async run(a) {
    const name = a.positionals[0]!;
    const def = loadDefinition(name);
    const paths = instancePaths(name);
    if (!isRunning(paths)) throw conflictError(`${name} is not running (vmstub start ${name})`);
    const port = readState(paths).sshPort;
    if (!port) throw conflictError(`${name} has no user-mode network, so no forwarded SSH port`);
    learnInstalledHostKeys(name, paths);
    const known = existsSync(paths.knownHosts) && statSync(paths.knownHosts).size > 0;
    if (!known && !flag(a, 'accept-new')) {
      throw conflictError(
        `no SSH host key is recorded for ${name}; to trust the key it presents now, run: vmstub ssh --accept-new ${name}`,
      );
    }
    const args = sshArgs(
      {
        port,
        user: str(a, 'user') ?? def.sshUser,
        knownHosts: paths.knownHosts,
        hostKeyAlias: `vmstub-${name}`,
        identity: existsSync(paths.sshKey) ? paths.sshKey : undefined,
      },
      a.rest,
      known ? [] : ['-o', 'StrictHostKeyChecking=accept-new'],
    );
    const child = spawn(requireTool('ssh', 'openssh-client'), args, { stdio: 'inherit' });
    return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? ExitCode.failure)));
  },
};

/** A disk inside the instance directory would go with it: it moves to keptDisksDir() instead. */
function keepDisk(name: string, disk: string): string {
  mkdirSync(keptDisksDir(), { recursive: true, mode: 0o700 });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  let target = join(keptDisksDir(), `${name}-${stamp}${extname(disk) || '.img'}`);
  for (let n = 2; existsSync(target); n++)
    target = join(keptDisksDir(), `${name}-${stamp}-${n}${extname(disk)}`);
  renameSync(disk, target);
  return target;
}

const rm: Command = {
  spec: {
    name: 'rm',
    summary:
      'Remove a stopped instance. Its disk images stay on the host (moved out of the instance) unless --disks.',
    usage: '[--disks] [--json] NAME',
    positionals: [{ name: 'NAME' }],
    options: [{ name: 'disks', takes: 'flag', help: "also delete the instance's data disk image" }, JSON_OPT],
  },
  async run(a) {
    const name = a.positionals[0]!;
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
    const disks = new Set<string>();
    if (def?.data) disks.add(resolve(def.data.path));
    const created = join(paths.dir, CREATED_DISK);
    if (existsSync(created)) disks.add(created);
    const kept: { disk: string; from?: string }[] = [];
    const deleted: string[] = [];
    for (const disk of disks) {
      if (!existsSync(disk)) continue;
      if (flag(a, 'disks')) {
        rmSync(disk);
        deleted.push(disk);
      } else if (disk.startsWith(`${paths.dir}/`)) {
        kept.push({ disk: keepDisk(name, disk), from: disk });
      } else kept.push({ disk });
    }
    removeInstance(paths);
    if (flag(a, 'json')) {
      printJson({ removed: name, keptDisks: kept.map((k) => k.disk), deletedDisks: deleted });
      return ExitCode.ok;
    }
    for (const k of kept)
      process.stdout.write(`kept disk ${k.disk}${k.from ? ' (moved out of the instance)' : ''}\n`);
    process.stdout.write(
      `removed instance ${name}${deleted.length ? ` and disk ${deleted.join(', ')}` : ''}\n`,
    );
    return ExitCode.ok;
  },
};

export const vmCommands: Command[] = [run, start, stop, consoleCmd, listCmd, show, ssh, rm];

export { formatHelp };
