import { resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { annotate, jsonOption, wholeNumber } from './options.js';
import { formatTable, note, printJson } from './output.js';
import { specFromOptions, withSpecOptions } from './spec-options.js';
import { CATALOG } from '../catalog/index.js';
import { InstallProgress } from '../events/progress.js';
import {
  createSpec,
  createWithInstall,
  resumeInstall,
  type CreateOptions,
  type CreateResult,
} from '../installer/create.js';
import { distroLabel, evidenceFor, installableLabel, NOT_RUN_HERE } from '../catalog/evidence.js';
import { hostPublicKeys } from '../installer/host-defaults.js';
import { buildPlan, formatPlan } from '../installer/plan/index.js';
import type { SpecInput, SpecSource } from '../installer/spec.js';
import { cloneInstance } from '../installer/clone.js';
import { BOOTSTRAP_SITES } from '../installer/root-cache.js';
import { EventSink } from '../events/sink.js';
import {
  INSTALL_LOG,
  fwCfgHostKeys,
  fwCfgPackageCache,
  fwCfgSpec,
  installInStub,
  stubSpec,
} from '../installer/stub-install.js';
import { ExitCode, usageError } from '../util/errors.js';
import { terminalPassphrase } from './prompt.js';

const distros = () =>
  new Command('distros')
    .summary('list the distributions vmstub knows, and what it can do with each')
    .addOption(jsonOption('the catalog as JSON'))
    .action(async (o) => {
      if (o.json) {
        printJson(
          CATALOG.map((d) => ({
            ...d,
            evidence: evidenceFor(d.id),
            ...(NOT_RUN_HERE[d.id] ? { notRunHere: NOT_RUN_HERE[d.id] } : {}),
          })),
        );
        return;
      }
      const rows = CATALOG.map((d) => [
        d.id,
        d.name,
        d.family,
        d.arches.join(','),
        d.installable ? installableLabel(d.id) : 'not yet',
        distroLabel(d),
        d.note ?? '',
      ]);
      process.stdout.write(
        formatTable(
          ['ID', 'NAME', 'FAMILY', 'ARCHITECTURES', 'INSTALLABLE', 'VERIFIED (FURTHEST, AGAINST)', 'NOTE'],
          rows,
        ),
      );
    });

const plan = () =>
  withSpecOptions(
    new Command('plan')
      .summary('print the steps an install would take, and the files it would write; changes nothing')
      .usage('[options] --distro ID'),
    'plan',
  )
    .addOption(jsonOption('the plan as JSON'))
    .action(async (o) => {
      const { input, source } = specFromOptions('plan', o as Record<string, unknown>);
      const p = buildPlan(
        createSpec({ name: input.hostname ?? input.distro ?? 'vm', input, source }, hostPublicKeys()).spec,
      );
      if (o.json) printJson(p);
      else process.stdout.write(formatPlan(p, true));
    });

const SSH_TIMEOUT_DEFAULT_SEC = 600;
const sshTimeoutOption = () =>
  new Option('--ssh-timeout <SECONDS>', 'how long to wait for SSH after the install')
    .argParser(wholeNumber('--ssh-timeout', 10, 7200))
    .default(SSH_TIMEOUT_DEFAULT_SEC, `${SSH_TIMEOUT_DEFAULT_SEC} s`);
const eventsJsonOption = () =>
  jsonOption(
    "NDJSON on stdout: the installer's events, then {type: 'result', ...} or {type: 'error', message, exitCode}",
  );

const create = () =>
  withSpecOptions(
    new Command('create')
      .summary(
        'create a VM and install a distribution into it, unattended, from nothing to a verified SSH login',
      )
      .description(
        "Create a VM and install a distribution into it, unattended, from nothing to a verified SSH login. Allocates the disk, boots the stub with the install spec, shows the installer's progress, records the new system's host key and waits until SSH really works. A failed install leaves the VM in the stub.",
      )
      .usage('[options] NAME --distro ID')
      .argument('<NAME>', 'the new instance'),
    'create',
  )
    .addOption(sshTimeoutOption())
    .addOption(
      new Option(
        '--bootstrap-on <SITE>',
        'where the bootstrap runs: the host (natively, its result cached for later creates), the guest (the stub), or auto (the host under TCG where it can, and wherever a cached root of this recipe exists)',
      )
        .choices(BOOTSTRAP_SITES)
        .default('auto' as const),
    )
    .option('--fresh', 'bootstrap again even if a root filesystem of this recipe is cached')
    .option('--explain', 'say where the bootstrap runs and why, and what a cached root matched or not')
    .option(
      '--no-package-cache',
      "download straight from the mirror, not through vmstub's package cache on the host",
    )
    .option('--dry-run', 'print the plan and stop')
    .addOption(eventsJsonOption())
    .action(async (name, o) => {
      const { input, source } = specFromOptions('create', o as Record<string, unknown>);
      if (!input.distro) throw usageError('create: --distro is required (vmstub distros lists them)');
      if (o.dryRun) {
        process.stdout.write(
          formatPlan(buildPlan(createSpec({ name, input, source }, hostPublicKeys()).spec), true),
        );
        return;
      }
      await followInstall(name, o.json === true, (hooks) =>
        createWithInstall({
          name,
          input,
          source,
          sshTimeoutSec: o.sshTimeout,
          bootstrapOn: o.bootstrapOn,
          fresh: o.fresh === true,
          explain: o.explain === true,
          packageCache: o.packageCache !== false,
          askPassphrase: terminalPassphrase(),
          ...hooks,
        }),
      );
    });

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

const resume = () =>
  new Command('resume')
    .summary(
      'go on with an install that did not finish: follow it if it still runs, else start it over on the same disk',
    )
    .description(
      'For instances made by vmstub create whose install failed or was interrupted (vmstub list says so). The same spec is used; the disk is formatted again only because its own install never finished.',
    )
    .argument('<NAME>', 'the instance')
    .addOption(sshTimeoutOption())
    .option(
      '--key-file <FILE>',
      'an encrypted root the host keeps no passphrase of (--unlock console): the new passphrase, the first line of FILE (else asked at the terminal)',
    )
    .addOption(eventsJsonOption())
    .action(async (name, o) => {
      await followInstall(name, o.json === true, (hooks) =>
        resumeInstall(name, {
          sshTimeoutSec: o.sshTimeout,
          keyFile: o.keyFile,
          askPassphrase: terminalPassphrase(),
          ...hooks,
        }),
      );
    });

const clone = () =>
  new Command('clone')
    .summary(
      'copy a stopped instance (copy-on-write) into a new one with its own host name, machine-id and SSH host keys, to a verified SSH login',
    )
    .description(
      "The source's disk becomes a read-only layer under two qcow2 overlays, the source's and the clone's, so the source keeps working and nothing is copied. Before the clone's system first starts, the stub makes its host name, machine-id, random seed and SSH host keys anew; the new host keys are recorded and SSH is verified. The clone has the source's memory, CPUs, users and keys; not its port forwards or shares. Its root filesystem keeps the source's UUID (a copy of the same filesystem). A source whose clones exist cannot be removed until they are. An encrypted root's clone gets a passphrase of its own (--key-file, else typed twice) and unlocks as its source does: the stub changes the key slot of the clone's copy of the LUKS header (cryptsetup luksChangeKey), so the source's passphrase no longer opens the clone, nor the clone's the source; the volume key under both stays one, as the encrypted data is one copy. The source's passphrase comes from the host, or is typed when the host does not keep it.",
    )
    .argument('<SOURCE>', 'a stopped instance made by vmstub create')
    .argument('<NAME>', 'the new instance')
    .addOption(sshTimeoutOption())
    .option(
      '--key-file <FILE>',
      "an encrypted root's clone: its own passphrase, the first line of FILE (else asked at the terminal)",
    )
    .addOption(eventsJsonOption())
    .action(async (source, name, o) => {
      await followInstall(name, o.json === true, (hooks) =>
        cloneInstance(source, {
          name,
          sshTimeoutSec: o.sshTimeout,
          keyFile: o.keyFile,
          askPassphrase: terminalPassphrase(),
          ...hooks,
        }),
      );
    });

const install = () =>
  withSpecOptions(
    new Command('install')
      .summary('(in the stub) install a distribution onto the data disk; what /root/DISTRO.sh runs')
      .description(
        "Without DISTRO, the spec the host passed through fw_cfg (vmstub create) is used. Progress is printed as it goes; with --json, the installer's events are NDJSON on stdout instead.",
      )
      .argument('[DISTRO]', 'the distribution (vmstub distros)'),
    'install',
  )
    .addOption(
      annotate(
        new Option('--target <TARGET>', 'the data disk, or the share tagged fs').choices([
          'disk',
          'share',
        ] as const),
        {
          defaultText: 'disk',
        },
      ),
    )
    .option('--target-dir <DIR>', 'install into an empty directory instead (as root; also outside the stub)')
    .option('--no-boot', 'do not start the installed system afterwards')
    .option('--dry-run', 'print the plan and stop')
    .addOption(jsonOption("the installer's events as NDJSON on stdout, then {type: 'result', status}"))
    .action(async (distro, o) => {
      const print = (l: string) => process.stdout.write(l + '\n');
      let input: SpecInput;
      let source: SpecSource;
      if (distro) {
        ({ input, source } = specFromOptions('install', o as Record<string, unknown>, { distro }));
        if (o.target) input.target = o.target;
      } else {
        const fromHost = await fwCfgSpec();
        if (!fromHost)
          throw usageError(
            'install: name a distribution (e.g. vmstub install debian12), or let vmstub create pass a spec',
          );
        input = fromHost;
        source = { where: "the host's install spec" };
      }
      if (o.targetDir) input.target = 'directory';
      const spec = distro ? await stubSpec(input, source) : await hostSpecOrReport(input, source);
      if (o.dryRun) {
        print(formatPlan(buildPlan(spec), true));
        return;
      }
      if (spec.target === 'directory' && !o.targetDir)
        throw usageError('install: target directory needs --target-dir DIR');
      const status = await installInStub(spec, {
        boot: o.boot !== false && !o.targetDir,
        print: o.json ? (l) => process.stderr.write(l + '\n') : print,
        onEvent: o.json ? (e) => process.stdout.write(JSON.stringify(e) + '\n') : undefined,
        targetDir: o.targetDir && resolve(o.targetDir),
        downloadProxy: distro ? undefined : await fwCfgPackageCache(),
        hostKeys: distro ? undefined : await fwCfgHostKeys(),
      });
      if (o.json) process.stdout.write(JSON.stringify({ type: 'result', status }) + '\n');
      process.exitCode = status;
    });

/**
 * The host's spec, resolved in the stub; a spec this stub cannot read (a stub image older than the
 * vmstub that sent it) is reported over the events port too, so create ends at once instead of waiting.
 */
async function hostSpecOrReport(input: SpecInput, source: SpecSource) {
  try {
    return await stubSpec(input, source);
  } catch (e) {
    const reason = `${(e as Error).message} (is the stub image older than this vmstub? vmstub image build stub makes it anew)`;
    const events = new EventSink();
    events.emit({ type: 'install-failed', step: 'start', reason, log: INSTALL_LOG });
    events.close();
    throw e;
  }
}

export const installCommands = () => [distros(), plan(), create(), resume(), clone(), install()];
