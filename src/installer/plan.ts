import type { DebDistro, Distro } from '../catalog/types.js';
import type { RpmRepo } from '../bootstrap/rpm/bootstrap.js';
import { buildGentooPlan } from './plan-gentoo.js';
import { buildRpmPlan } from './plan-rpm.js';
import { EATMYDATA_CUSTOMIZE_HOOK, EATMYDATA_EXTRACT_HOOK } from './eatmydata.js';
import { findDistro } from '../catalog/index.js';
import { DEBIAN_ARCH } from '../util/arch.js';
import {
  CUSTOM_KEYRING,
  NETPLAN_ID,
  aptProxy,
  aptSources,
  aptSourcesPath,
  authorizedKeys,
  debMirrors,
  fstab,
  hosts,
  initramfsConf,
  initramfsModules,
  keyboardConf,
  localeConf,
  localeGenLine,
  mkfsArgv,
  netplanEthernet,
  netplanNetworkdDropIn,
  networkdEthernet,
  resolvedConf,
  sshdConf,
  sudoers,
} from './render.js';
import type { InstallSpec } from './spec.js';

/** How often apt retries a failed download (with a growing delay) before the install fails. */
const DOWNLOAD_RETRIES = 5;

/** Where the target is mounted in the stub, and where files for the bootstrap's setup hook are staged. */
export const TARGET = '/run/vmstub-install/target';
export const STAGING = '/run/vmstub-install/early';
/** mmdebstrap hook directories the installer writes (--hook-dir). */
export const HOOKS = '/run/vmstub-install/hooks';
export const DATA_DISK = '/dev/disk/by-id/virtio-data';

/** Values only known while installing, written into file contents as {{NAME}}. */
export const ROOT_UUID = '{{ROOT_UUID}}';

export type Action =
  /** A command in the stub, or with chroot inside the target (proc, sys and dev mounted for it). */
  | {
      kind: 'exec';
      argv: string[];
      chroot?: boolean;
      input?: string;
      env?: Record<string, string>;
      progress?: 'bootstrap';
    }
  /** A file inside the target, or in the staging directory. */
  | {
      kind: 'write';
      path: string;
      content: string;
      mode?: number;
      in?: 'target' | 'staging' | 'hooks';
      owner?: string;
    }
  | { kind: 'symlink'; path: string; target: string }
  /** Delete a file or directory inside the target. */
  | { kind: 'remove'; path: string }
  /** The RPM bootstrap's first pass (src/bootstrap/rpm) into the target. */
  | {
      kind: 'rpm-bootstrap';
      repos: RpmRepo[];
      packages: string[];
      dbpath: string;
      /** Key files in the stub, or (keysFromFirstPackage) inside the first package. */
      keys: string[];
      keysFromFirstPackage?: string[];
    }
  /** Find, verify and unpack the newest Gentoo stage3 (src/bootstrap/gentoo) into the target. */
  | {
      kind: 'gentoo-stage3';
      mirror: string;
      dir: string;
      flavour: string;
      keyUrl: string;
      fingerprint: string;
    }
  | { kind: 'copy-in'; from: string; path: string }
  /** Refuse a disk that holds a filesystem or partition table, unless wipe. */
  | { kind: 'check-blank'; device: string; wipe: boolean; startOver?: boolean }
  /** Refuse a share or directory that is not empty (vmstub never deletes files on the host's side). */
  | { kind: 'check-empty-target' }
  | { kind: 'mount'; source: string; fstype: string; options?: string }
  | { kind: 'read-uuid'; device: string }
  | { kind: 'chroot-mounts' }
  /** The boot handoff must find a kernel and initramfs where it looks. */
  | { kind: 'verify-boot' }
  | { kind: 'collect-host-keys' };

export interface Step {
  id: string;
  title: string;
  actions: Action[];
}

export interface Plan {
  spec: InstallSpec;
  distro: Distro;
  steps: Step[];
}

/** Every package the bootstrap installs: the release's set, its kernel, the locale support asked for, extras. */
export function debPackages(d: DebDistro, spec: InstallSpec): string[] {
  const kernel = d.kernelPackage[spec.arch];
  if (!kernel) throw new Error(`${d.name} has no kernel package for ${spec.arch}`);
  // apt by name: minbase finds it through priorities, which a private mirror may not carry.
  const extra = [kernel, 'apt', ...(d.vendor === 'ubuntu' ? ['ubuntu-keyring'] : ['debian-archive-keyring'])];
  if (spec.keyboard) extra.push('keyboard-configuration');
  return [...new Set([...d.packages, ...extra, ...spec.packages])].sort();
}

function bootstrapStep(d: DebDistro, spec: InstallSpec): Step {
  const { mirror, securityMirror } = debMirrors(d, spec);
  const keyring = spec.keyring ?? d.keyring;
  const packages = debPackages(d, spec);
  if (spec.bootstrap === 'debootstrap') {
    return {
      id: 'bootstrap',
      title: `Bootstrap ${d.name} with debootstrap`,
      actions: [
        {
          kind: 'exec',
          argv: [
            'debootstrap',
            '--variant=minbase',
            `--arch=${DEBIAN_ARCH[spec.arch]}`,
            `--components=${d.components.join(',')}`,
            `--include=${packages.join(',')}`,
            `--keyring=${keyring}`,
            d.suite,
            TARGET,
            mirror,
          ],
          env: spec.proxy ? { http_proxy: spec.proxy } : undefined,
          progress: 'bootstrap',
        },
      ],
    };
  }
  // A one-line source names one suite. signed-by on each, not --keyring: the apt that mmdebstrap's
  // eatmydata hook runs must verify the mirror too.
  const source = (uri: string, suite: string) =>
    `deb [signed-by=${keyring}] ${uri} ${suite} ${d.components.join(' ')}`;
  return {
    id: 'bootstrap',
    title: `Bootstrap ${d.name} with mmdebstrap`,
    actions: [
      {
        kind: 'exec',
        argv: [
          'mmdebstrap',
          // apt's and dpkg's own output instead of progress bars: the log, and package counts for progress
          '--verbose',
          '--mode=root',
          '--variant=minbase',
          `--architectures=${DEBIAN_ARCH[spec.arch]}`,
          `--include=${packages.join(',')}`,
          `--aptopt=Acquire::Retries "${DOWNLOAD_RETRIES}"`,
          ...(spec.proxy ? [`--aptopt=Acquire::http::Proxy "${spec.proxy}"`] : []),
          // The initramfs configuration is in place before the kernel's postinst builds its initramfs.
          `--setup-hook=sync-in ${STAGING} /`,
          `--hook-dir=${HOOKS}/eatmydata`,
          d.suite,
          TARGET,
          source(mirror, d.suite),
          source(mirror, d.updatesSuite),
          source(securityMirror, d.securitySuite),
        ],
        progress: 'bootstrap',
      },
    ],
  };
}

export const chroot = (argv: string[], input?: string): Action => ({
  kind: 'exec',
  argv,
  chroot: true,
  input,
});

/**
 * The install as ordered, named steps, computed from the spec alone: printable (vmstub plan), tested
 * as a snapshot, and run by the executor step by step.
 */
export function buildPlan(spec: InstallSpec): Plan {
  const distro = findDistro(spec.distro);
  if (distro.family === 'deb') return buildDebPlan(spec, distro);
  if (distro.family === 'gentoo') return buildGentooPlan(spec, distro);
  return buildRpmPlan(spec, distro);
}

/** The root filesystem's type as fstab and the initramfs name it. */
export const rootFsType = (spec: InstallSpec) => (spec.target === 'disk' ? spec.filesystem : 'virtiofs');

/** Format and mount the data disk, mount the share, or check the directory. */
export function targetSteps(spec: InstallSpec, kernelSeries: string, xfsV4 = false): Step[] {
  const steps: Step[] = [];
  // A resume starts over on the disk its unfinished install left (vmstub resume checked that on the host).
  const overwrite = spec.wipe || spec.resume;
  if (spec.target === 'disk') {
    steps.push({
      id: 'format',
      title: `Make a ${spec.filesystem} filesystem for kernel ${kernelSeries} on the data disk`,
      actions: [
        { kind: 'check-blank', device: DATA_DISK, wipe: spec.wipe, startOver: spec.resume },
        ...(overwrite ? [{ kind: 'exec', argv: ['wipefs', '-a', DATA_DISK] } as Action] : []),
        { kind: 'exec', argv: mkfsArgv(spec.filesystem, kernelSeries, DATA_DISK, overwrite, xfsV4) },
      ],
    });
    steps.push({
      id: 'mount',
      title: 'Mount the data disk',
      actions: [
        { kind: 'mount', source: DATA_DISK, fstype: spec.filesystem },
        { kind: 'read-uuid', device: DATA_DISK },
      ],
    });
  } else if (spec.target === 'share') {
    steps.push({
      id: 'mount',
      title: 'Mount the share tagged fs',
      actions: [{ kind: 'mount', source: 'fs', fstype: 'virtiofs' }, { kind: 'check-empty-target' }],
    });
  } else {
    steps.push({
      id: 'target',
      title: 'Check the target directory',
      actions: [{ kind: 'check-empty-target' }],
    });
  }
  return steps;
}

function buildDebPlan(spec: InstallSpec, d: DebDistro): Plan {
  const fsType = rootFsType(spec);
  const steps: Step[] = targetSteps(spec, d.kernelSeries);

  steps.push({
    id: 'prepare',
    title:
      spec.bootstrap === 'mmdebstrap'
        ? "Stage the initramfs configuration and the bootstrap's hooks"
        : 'Stage the initramfs configuration',
    actions: [
      {
        kind: 'write',
        in: 'staging',
        path: '/etc/initramfs-tools/conf.d/vmstub.conf',
        content: initramfsConf(),
      },
      {
        kind: 'write',
        in: 'staging',
        path: '/usr/share/initramfs-tools/modules.d/vmstub',
        content: initramfsModules(fsType),
      },
      ...(spec.bootstrap === 'mmdebstrap'
        ? ([
            {
              kind: 'write',
              in: 'hooks',
              path: '/eatmydata/extract00.sh',
              content: EATMYDATA_EXTRACT_HOOK,
              mode: 0o755,
            },
            {
              kind: 'write',
              in: 'hooks',
              path: '/eatmydata/customize99.sh',
              content: EATMYDATA_CUSTOMIZE_HOOK,
              mode: 0o755,
            },
          ] as Action[])
        : []),
    ],
  });
  steps.push(bootstrapStep(d, spec));
  if (spec.bootstrap === 'debootstrap') {
    // debootstrap knows one mirror: security and updates come afterwards, and the initramfs again.
    steps.push({
      id: 'updates',
      title: 'Apply security and stable updates, rebuild the initramfs',
      actions: [
        { kind: 'chroot-mounts' },
        { kind: 'write', path: aptSourcesPath(d), content: aptSources(d, spec) },
        { kind: 'write', path: '/etc/apt/sources.list', content: '' },
        chroot(['apt-get', `-oAcquire::Retries=${DOWNLOAD_RETRIES}`, 'update']),
        chroot([
          'env',
          'DEBIAN_FRONTEND=noninteractive',
          'apt-get',
          `-oAcquire::Retries=${DOWNLOAD_RETRIES}`,
          '-y',
          'dist-upgrade',
        ]),
        chroot(['update-initramfs', '-u', '-k', 'all']),
      ],
    });
  }

  const aptActions: Action[] = [
    { kind: 'write', path: aptSourcesPath(d), content: aptSources(d, spec) },
    { kind: 'write', path: '/etc/apt/sources.list', content: '# vmstub: see sources.list.d/\n' },
  ];
  if (spec.keyring) aptActions.push({ kind: 'copy-in', from: spec.keyring, path: CUSTOM_KEYRING });
  if (spec.proxy)
    aptActions.push({
      kind: 'write',
      path: '/etc/apt/apt.conf.d/90vmstub-proxy',
      content: aptProxy(spec.proxy),
    });
  steps.push({ id: 'apt', title: 'Configure apt sources', actions: aptActions });

  const localeLine = localeGenLine(spec.locale);
  steps.push({
    id: 'system',
    title: 'Configure fstab, host name, time zone and locale',
    actions: [
      { kind: 'chroot-mounts' },
      { kind: 'write', path: '/etc/fstab', content: fstab(ROOT_UUID, fsType) },
      { kind: 'write', path: '/etc/hostname', content: `${spec.hostname}\n` },
      { kind: 'write', path: '/etc/hosts', content: hosts(spec.hostname) },
      { kind: 'symlink', path: '/etc/localtime', target: `/usr/share/zoneinfo/${spec.timezone}` },
      { kind: 'write', path: '/etc/timezone', content: `${spec.timezone}\n` },
      ...(localeLine
        ? [{ kind: 'write', path: '/etc/locale.gen', content: localeLine } as Action, chroot(['locale-gen'])]
        : []),
      { kind: 'write', path: '/etc/default/locale', content: localeConf(spec.locale) },
      ...(spec.keyboard
        ? [{ kind: 'write', path: '/etc/default/keyboard', content: keyboardConf(spec.keyboard) } as Action]
        : []),
      // A machine-id of its own on first boot, not the bootstrap's.
      { kind: 'write', path: '/etc/machine-id', content: '' },
    ],
  });

  const net: Action[] =
    d.network === 'netplan'
      ? [
          { kind: 'write', path: '/etc/netplan/50-vmstub.yaml', content: netplanEthernet(), mode: 0o600 },
          {
            kind: 'write',
            path: `/etc/systemd/network/10-netplan-${NETPLAN_ID}.network.d/vmstub.conf`,
            content: netplanNetworkdDropIn(),
          },
        ]
      : [
          {
            kind: 'write',
            path: '/etc/systemd/network/80-vmstub-ethernet.network',
            content: networkdEthernet(),
          },
        ];
  steps.push({
    id: 'network',
    title: `Configure the network (${d.network}: DHCPv4/v6 on every ethernet interface; LLMNR and mDNS)`,
    actions: [
      ...net,
      { kind: 'write', path: '/etc/systemd/resolved.conf.d/vmstub.conf', content: resolvedConf() },
      { kind: 'symlink', path: '/etc/resolv.conf', target: '../run/systemd/resolve/stub-resolv.conf' },
      chroot(['systemctl', 'enable', 'systemd-networkd.service', 'systemd-resolved.service']),
    ],
  });

  steps.push(accountsStep(spec, 'sudo'));

  steps.push({
    id: 'ssh',
    title: 'OpenSSH server with host keys of its own',
    actions: [
      { kind: 'write', path: '/etc/ssh/sshd_config.d/vmstub.conf', content: sshdConf(spec) },
      // openssh-server's postinst made them in this system; this only fills any gap. Never the stub's keys.
      chroot(['ssh-keygen', '-A']),
      chroot(['systemctl', 'enable', 'ssh.service']),
    ],
  });
  steps.push(...finalSteps(spec));
  return { spec, distro: d, steps };
}

export function accountsStep(spec: InstallSpec, sudoGroup: string): Step {
  return {
    id: 'accounts',
    title: 'Set up root and users (root locked unless a password hash is given)',
    actions: accountActions(spec, sudoGroup),
  };
}

/** Root locked (or the hash given), users with their keys, passwordless sudo for key-only sudoers. */
function accountActions(spec: InstallSpec, sudoGroup: string): Action[] {
  const accounts: Action[] = [];
  accounts.push(
    spec.root.passwordHash
      ? chroot(['usermod', '-p', spec.root.passwordHash, 'root'])
      : chroot(['passwd', '-l', 'root']),
  );
  if (spec.root.sshKeys.length) {
    accounts.push({
      kind: 'write',
      path: '/root/.ssh/authorized_keys',
      content: authorizedKeys(spec.root.sshKeys),
      mode: 0o600,
    });
  }
  for (const u of spec.users) {
    accounts.push(
      chroot([
        'useradd',
        '--create-home',
        '--shell',
        '/bin/bash',
        ...(u.sudo ? ['--groups', sudoGroup] : []),
        u.name,
      ]),
    );
    accounts.push(
      u.passwordHash ? chroot(['usermod', '-p', u.passwordHash, u.name]) : chroot(['passwd', '-l', u.name]),
    );
    if (u.sshKeys.length) {
      accounts.push({
        kind: 'write',
        path: `/home/${u.name}/.ssh/authorized_keys`,
        content: authorizedKeys(u.sshKeys),
        mode: 0o600,
        owner: u.name,
      });
    }
    if (u.sudo && !u.passwordHash)
      accounts.push({
        kind: 'write',
        path: `/etc/sudoers.d/vmstub-${u.name}`,
        content: sudoers(u.name),
        mode: 0o440,
      });
  }
  return accounts;
}

/** The user's post-install commands, then the check that the handoff will find a kernel. */
export function finalSteps(spec: InstallSpec): Step[] {
  const steps: Step[] = [];
  if (spec.postInstall.length) {
    steps.push({
      id: 'post-install',
      title: 'Run the post-install commands',
      actions: spec.postInstall.map((c) => chroot(['/bin/sh', '-c', c])),
    });
  }
  steps.push({
    id: 'verify',
    title: 'Check the kernel is where the boot handoff finds it',
    actions: [{ kind: 'verify-boot' }, { kind: 'collect-host-keys' }],
  });
  return steps;
}

function describe(a: Action): string {
  switch (a.kind) {
    case 'exec':
      return `$ ${a.chroot ? 'chroot TARGET ' : ''}${a.argv.map((x) => (/[\s"']/.test(x) ? `'${x}'` : x)).join(' ')}${a.input ? ' <<< (input)' : ''}`;
    case 'write':
      return `write ${a.in === 'staging' ? 'STAGING' : a.in === 'hooks' ? 'HOOKS' : 'TARGET'}${a.path}${a.mode ? ` (mode ${a.mode.toString(8)})` : ''}${a.owner ? ` owned by ${a.owner}` : ''}`;
    case 'symlink':
      return `link TARGET${a.path} -> ${a.target}`;
    case 'remove':
      return `remove TARGET${a.path}`;
    case 'rpm-bootstrap':
      return [
        `rpm-bootstrap ${a.packages.join(' ')} into TARGET (rpm database ${a.dbpath})`,
        ...a.repos.map((r) => `     from ${r.id}: ${r.baseurl}`),
        ...(a.keysFromFirstPackage?.length
          ? [
              `     keys: from ${a.packages[0]} itself (${a.keysFromFirstPackage.join(', ')}), then checked against it`,
            ]
          : a.keys.map((k) => `     key: ${k}`)),
      ].join('\n');
    case 'gentoo-stage3':
      return [
        `fetch the newest ${a.flavour} named by ${a.mirror}/${a.dir}/latest-${a.flavour}.txt`,
        `     verify its DIGESTS (signed by ${a.fingerprint}, key from ${a.keyUrl}) and its SHA512`,
        '     unpack it into TARGET with xattrs and numeric owners',
      ].join('\n');
    case 'copy-in':
      return `copy ${a.from} to TARGET${a.path}`;
    case 'check-blank':
      return `refuse ${a.device} if it holds a filesystem or partition table${a.wipe ? ' (unless: --wipe given, so it is wiped)' : a.startOver ? ' (unless: a resume, so the unfinished install is wiped)' : ''}`;
    case 'check-empty-target':
      return 'refuse the target unless it is empty';
    case 'mount':
      return `mount ${a.source} (${a.fstype}) on TARGET`;
    case 'read-uuid':
      return `read the filesystem UUID of ${a.device} (for fstab)`;
    case 'chroot-mounts':
      return 'mount proc, sys, dev and run in TARGET for chroot commands';
    case 'verify-boot':
      return 'find the installed kernel and initramfs as the boot handoff will';
    case 'collect-host-keys':
      return "read the new system's SSH host public keys (reported to the host)";
  }
}

/** The plan as people read it; with files, each written file's content too. */
export function formatPlan(plan: Plan, showFiles: boolean): string {
  const out = [
    `Install ${plan.distro.name} (${plan.spec.arch}) as ${plan.spec.hostname}: ${plan.steps.length} steps`,
    `TARGET = ${TARGET}`,
    `STAGING = ${STAGING}`,
    `HOOKS = ${HOOKS}`,
  ];
  plan.steps.forEach((s, i) => {
    out.push('', `${i + 1}. ${s.id}: ${s.title}`);
    for (const a of s.actions) {
      out.push(`   ${describe(a)}`);
      if (showFiles && a.kind === 'write' && a.content) {
        for (const line of a.content.replace(/\n$/, '').split('\n')) out.push(`   | ${line}`);
      }
    }
  });
  return out.join('\n') + '\n';
}
