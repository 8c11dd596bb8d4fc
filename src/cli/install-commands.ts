import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { flag, intOption, list, str, type OptionSpec, type ParsedArgs } from './args.js';
import { formatTable, note, printJson } from './output.js';
import type { Command } from './vm-commands.js';
import { CATALOG } from '../catalog/index.js';
import { InstallProgress } from '../events/progress.js';
import {
  createSpec,
  createWithInstall,
  resumeInstall,
  type CreateOptions,
  type CreateResult,
} from '../installer/create.js';
import { hostPublicKeys } from '../installer/host-defaults.js';
import { buildPlan, formatPlan } from '../installer/plan.js';
import { readSpecFile, type SpecInput } from '../installer/spec.js';
import { fwCfgSpec, installInStub, stubSpec } from '../installer/stub-install.js';
import { ExitCode, usageError } from '../util/errors.js';
import { parseMemoryMiB, parseSize } from '../util/size.js';

const SPEC_OPTIONS: OptionSpec[] = [
  {
    name: 'config',
    takes: 'value',
    valueName: 'FILE',
    help: 'install spec (YAML or JSON); flags override it',
  },
  { name: 'hostname', takes: 'value', valueName: 'NAME', help: 'host name (default: the instance name)' },
  { name: 'filesystem', takes: 'value', valueName: 'xfs|btrfs|ext4', help: 'root filesystem (default xfs)' },
  {
    name: 'wipe',
    takes: 'flag',
    help: 'format the data disk even if it holds a filesystem or partition table',
  },
  {
    name: 'mirror',
    takes: 'value',
    valueName: 'URL',
    help: "the distribution's mirror (default: its official one)",
  },
  { name: 'security-mirror', takes: 'value', valueName: 'URL', help: 'the security updates mirror' },
  {
    name: 'proxy',
    takes: 'value',
    valueName: 'URL',
    help: 'HTTP proxy for the install and for apt afterwards',
  },
  {
    name: 'keyring',
    takes: 'value',
    valueName: 'FILE',
    help: 'keyring (path in the stub) that signs --mirror',
  },
  { name: 'timezone', takes: 'value', valueName: 'ZONE', help: "time zone (default: the host's)" },
  { name: 'locale', takes: 'value', valueName: 'LOCALE', help: 'locale (default C.UTF-8)' },
  { name: 'keyboard', takes: 'value', valueName: 'LAYOUT', help: 'console keyboard layout' },
  {
    name: 'bootstrap',
    takes: 'value',
    valueName: 'mmdebstrap|debootstrap',
    help: 'bootstrap tool (default mmdebstrap)',
  },
  { name: 'package', takes: 'value', repeat: true, valueName: 'NAME', help: 'install this package too' },
  {
    name: 'user',
    takes: 'value',
    repeat: true,
    valueName: 'NAME',
    help: 'create a user with sudo and the same SSH keys as root',
  },
  {
    name: 'ssh-key',
    takes: 'value',
    repeat: true,
    valueName: 'FILE',
    help: 'authorize this public key for root (default: your keys)',
  },
  {
    name: 'root-password-hash',
    takes: 'value',
    valueName: 'HASH',
    help: "root's password as a crypt(3) hash (root is locked otherwise)",
  },
  {
    name: 'post-install',
    takes: 'value',
    repeat: true,
    valueName: 'COMMAND',
    help: 'run this in the new system at the end',
  },
];

/** The spec from --config, then the flags on top. */
function specInput(a: ParsedArgs, distro?: string): { input: SpecInput; where: string } {
  const file = str(a, 'config');
  const input: SpecInput = file ? readSpecFile(file) : {};
  const set = <K extends keyof SpecInput>(k: K, v: SpecInput[K] | undefined) => {
    if (v !== undefined) input[k] = v;
  };
  set('distro', distro ?? input.distro);
  set('hostname', str(a, 'hostname'));
  set('filesystem', str(a, 'filesystem') as SpecInput['filesystem']);
  if (flag(a, 'wipe')) input.wipe = true;
  set('mirror', str(a, 'mirror'));
  set('securityMirror', str(a, 'security-mirror'));
  set('proxy', str(a, 'proxy'));
  set('keyring', str(a, 'keyring'));
  set('timezone', str(a, 'timezone'));
  set('locale', str(a, 'locale'));
  set('keyboard', str(a, 'keyboard'));
  set('bootstrap', str(a, 'bootstrap') as SpecInput['bootstrap']);
  if (list(a, 'package').length) input.packages = [...(input.packages ?? []), ...list(a, 'package')];
  if (list(a, 'post-install').length)
    input.postInstall = [...(input.postInstall ?? []), ...list(a, 'post-install')];
  const keyFiles = list(a, 'ssh-key');
  const rootKeys = keyFiles.length
    ? keyFiles.flatMap((f) => {
        try {
          return readFileSync(f, 'utf8')
            .split('\n')
            .map((l) => l.trim())
            .filter(Boolean);
        } catch {
          throw usageError(`--ssh-key: cannot read ${f}`);
        }
      })
    : undefined;
  const hash = str(a, 'root-password-hash');
  if (rootKeys || hash)
    input.root = {
      ...input.root,
      ...(rootKeys ? { sshKeys: rootKeys } : {}),
      ...(hash ? { passwordHash: hash } : {}),
    };
  for (const name of list(a, 'user')) {
    input.users = [
      ...(input.users ?? []),
      { name, sudo: true, sshKeys: rootKeys ?? input.root?.sshKeys ?? hostPublicKeys() },
    ];
  }
  return { input, where: file ?? 'flags' };
}

const distros: Command = {
  spec: {
    name: 'distros',
    summary: 'List the distributions vmstub knows, and what it can do with each.',
    usage: '[--json]',
    positionals: [],
    options: [{ name: 'json', takes: 'flag', help: 'machine-readable output' }],
  },
  async run(a) {
    if (flag(a, 'json')) {
      printJson(CATALOG);
      return ExitCode.ok;
    }
    const verified = {
      'real-mirror': 'real mirror',
      'fixture-mirror': 'fixture mirror only',
      'fixture-bootstrap': 'fixture (bootstrap only)',
      'not-yet': '-',
    };
    const rows = CATALOG.map((d) => [
      d.id,
      d.name,
      d.family,
      d.arches.join(','),
      d.installable ? 'yes' : 'not yet',
      verified[d.verified],
      d.note ?? '',
    ]);
    process.stdout.write(
      formatTable(['ID', 'NAME', 'FAMILY', 'ARCHITECTURES', 'INSTALLABLE', 'VERIFIED AGAINST', 'NOTE'], rows),
    );
    return ExitCode.ok;
  },
};

const plan: Command = {
  spec: {
    name: 'plan',
    summary: 'Print the steps an install would take, and the files it would write. Changes nothing.',
    usage: '[options] --distro ID',
    positionals: [],
    options: [
      { name: 'distro', takes: 'value', valueName: 'ID', help: 'the distribution (vmstub distros)' },
      ...SPEC_OPTIONS,
      { name: 'json', takes: 'flag', help: 'the plan as JSON' },
    ],
  },
  async run(a) {
    const { input, where } = specInput(a, str(a, 'distro'));
    const p = buildPlan(
      createSpec({ name: input.hostname ?? input.distro ?? 'vm', input, where }, hostPublicKeys()),
    );
    if (flag(a, 'json')) printJson(p);
    else process.stdout.write(formatPlan(p, true));
    return ExitCode.ok;
  },
};

const create: Command = {
  spec: {
    name: 'create',
    summary:
      'Create a VM and install a distribution into it, unattended, from nothing to a verified SSH login.',
    usage: '[options] NAME --distro ID',
    positionals: [{ name: 'NAME' }],
    details:
      "Allocates the disk, boots the stub with the install spec, shows the installer's progress, records the\n" +
      "new system's host key and waits until SSH really works. A failed install leaves the VM in the stub.",
    options: [
      { name: 'distro', takes: 'value', valueName: 'ID', help: 'the distribution (vmstub distros)' },
      { name: 'disk', takes: 'value', valueName: 'SIZE', help: 'size of the disk (default 8G)' },
      { name: 'memory', short: 'm', takes: 'value', valueName: 'SIZE', help: 'memory (default 2048 MiB)' },
      { name: 'cpus', short: 'c', takes: 'value', valueName: 'N', help: 'virtual CPUs (default 2)' },
      ...SPEC_OPTIONS,
      {
        name: 'ssh-timeout',
        takes: 'value',
        valueName: 'SECONDS',
        help: 'how long to wait for SSH after the install (default 600)',
      },
      { name: 'dry-run', takes: 'flag', help: 'print the plan and stop' },
      { name: 'json', takes: 'flag', help: "the installer's events as NDJSON on stdout, then the result" },
    ],
  },
  async run(a) {
    const name = a.positionals[0]!;
    const { input, where } = specInput(a, str(a, 'distro'));
    if (!input.distro) throw usageError('create: --distro is required (vmstub distros lists them)');
    const sshTimeoutSec = intOption(a, 'ssh-timeout', 10, 7200) ?? 600;
    if (flag(a, 'dry-run')) {
      process.stdout.write(formatPlan(buildPlan(createSpec({ name, input, where }, hostPublicKeys())), true));
      return ExitCode.ok;
    }
    return followInstall(name, flag(a, 'json'), (hooks) =>
      createWithInstall({
        name,
        input,
        where,
        diskBytes: parseSize(str(a, 'disk') ?? '8G', '--disk'),
        memoryMiB: str(a, 'memory') ? parseMemoryMiB(str(a, 'memory')!) : undefined,
        cpus: intOption(a, 'cpus', 1, 64),
        sshTimeoutSec,
        ...hooks,
      }),
    );
  },
};

/** Renders an install's events (progress on stderr, or NDJSON on stdout) and its result. */
async function followInstall(
  name: string,
  json: boolean,
  start: (hooks: Pick<CreateOptions, 'note' | 'onEvent'>) => Promise<CreateResult & { resumed?: string }>,
): Promise<number> {
  const progress = new InstallProgress(process.stderr);
  const timer = setInterval(() => progress.tick(), 1000);
  try {
    const result = await start({
      note: json ? (l) => process.stderr.write(`vmstub: ${l}\n`) : note,
      onEvent: (e) => {
        if (json) process.stdout.write(JSON.stringify(e) + '\n');
        else if ('step' in e || e.type.startsWith('install'))
          progress.handle(e as Parameters<InstallProgress['handle']>[0]);
      },
    });
    if (json) process.stdout.write(JSON.stringify({ type: 'result', ...result }) + '\n');
    else {
      const phases = Object.entries(result.phases)
        .map(([k, v]) => `${k} ${v}s`)
        .join(', ');
      process.stdout.write(
        `${name} is ready: ${result.distro} as ${result.hostname}, in ${result.seconds} s (${phases})\n`,
      );
      process.stdout.write(`  vmstub ssh ${name}        (127.0.0.1:${result.sshPort}, host key checked)\n`);
    }
    return ExitCode.ok;
  } finally {
    clearInterval(timer);
  }
}

const resume: Command = {
  spec: {
    name: 'resume',
    summary:
      'Go on with an install that did not finish: follow it if it still runs, else start it over on the same disk.',
    usage: '[options] NAME',
    positionals: [{ name: 'NAME' }],
    details:
      'For instances made by vmstub create whose install failed or was interrupted (vmstub list says so).\n' +
      'The same spec is used; the disk is formatted again only because its own install never finished.',
    options: [
      {
        name: 'ssh-timeout',
        takes: 'value',
        valueName: 'SECONDS',
        help: 'how long to wait for SSH after the install (default 600)',
      },
      { name: 'json', takes: 'flag', help: "the installer's events as NDJSON on stdout, then the result" },
    ],
  },
  async run(a) {
    const name = a.positionals[0]!;
    const sshTimeoutSec = intOption(a, 'ssh-timeout', 10, 7200) ?? 600;
    return followInstall(name, flag(a, 'json'), (hooks) => resumeInstall(name, { sshTimeoutSec, ...hooks }));
  },
};

const install: Command = {
  spec: {
    name: 'install',
    summary: '(in the stub) install a distribution onto the data disk; what /root/DISTRO.sh runs.',
    usage: '[options] [DISTRO]',
    positionals: [{ name: 'DISTRO', optional: true }],
    details: 'Without DISTRO, the spec the host passed through fw_cfg (vmstub create) is used.',
    options: [
      ...SPEC_OPTIONS,
      {
        name: 'target',
        takes: 'value',
        valueName: 'disk|share',
        help: 'the data disk (default) or the share tagged fs',
      },
      {
        name: 'target-dir',
        takes: 'value',
        valueName: 'DIR',
        help: 'install into an empty directory instead (as root; also outside the stub)',
      },
      { name: 'no-boot', takes: 'flag', help: 'do not start the installed system afterwards' },
      { name: 'dry-run', takes: 'flag', help: 'print the plan and stop' },
    ],
  },
  async run(a) {
    const print = (l: string) => process.stdout.write(l + '\n');
    let input: SpecInput;
    let where: string;
    if (a.positionals[0]) {
      ({ input, where } = specInput(a, a.positionals[0]));
      if (str(a, 'target')) input.target = str(a, 'target') as SpecInput['target'];
    } else {
      const fromHost = await fwCfgSpec();
      if (!fromHost)
        throw usageError(
          'install: name a distribution (e.g. vmstub install debian12), or let vmstub create pass a spec',
        );
      input = fromHost;
      where = "the host's install spec";
    }
    const targetDir = str(a, 'target-dir');
    if (targetDir) input.target = 'directory';
    const spec = await stubSpec(input, where);
    if (flag(a, 'dry-run')) {
      print(formatPlan(buildPlan(spec), true));
      return ExitCode.ok;
    }
    if (spec.target === 'directory' && !targetDir)
      throw usageError('install: target directory needs --target-dir DIR');
    return installInStub(spec, {
      boot: !flag(a, 'no-boot') && !targetDir,
      print,
      targetDir: targetDir && resolve(targetDir),
    });
  },
};

export const installCommands: Command[] = [distros, plan, create, resume, install];
