/**
 * The install of an RPM distribution, in two passes: vmstub's own bootstrap puts the release package
 * and the package manager into the target (verified against the distribution's key), then the target's
 * own dnf or yum, in a chroot, installs the system, so the rpm database is native in format and place.
 */
import type { RpmDistro } from '../../catalog/types.js';
import { dracutConf, kernelCmdline, localeConf } from '../render.js';
import {
  INSTALL_REPO_FILE,
  TARGET_KEY_DIR,
  ifcfgEth0,
  langpackFor,
  nmKeyfile,
  rpmRepos,
  sshdPasswordSed,
  stubKeys,
  sysconfigNetwork,
  targetKeyPath,
  yumRepoFile,
} from '../render-rpm.js';
import type { InstallSpec } from '../spec.js';
import {
  accountsStep,
  finalSteps,
  fstabAction,
  hostnameAction,
  hostsAction,
  localtimeAction,
  machineIdReset,
  resolvedActions,
  sshStep,
  sshdDropIn,
  targetSteps,
} from './common.js';
import {
  ROOT_UUID,
  chroot,
  rootFsType,
  type Action,
  type Plan,
  type RootAction,
  type Step,
} from './types.js';

/** What the first pass installs: enough for the target's package manager to run. */
export function firstPassPackages(d: RpmDistro): string[] {
  return [d.releasePackage, d.packageManager];
}

/** Everything the target's package manager installs in the second pass. */
export function systemPackages(d: RpmDistro, spec: InstallSpec): string[] {
  const extra = d.langpacks ? [langpackFor(spec.locale)] : [];
  // A database the stub's rpm could not write natively was started afresh: register the first pass again.
  const again = d.rpmdb.backend === 'bdb' ? firstPassPackages(d) : [];
  return [...new Set([...again, ...d.packages, ...extra, ...spec.packages])].sort();
}

/** The target's own package manager installing packages from vmstub's repositories (weak dependencies: dnf's Recommends). */
export function packageManagerArgv(d: RpmDistro, packages: string[], weakDeps = false): string[] {
  if (d.packageManager === 'yum')
    return [
      'yum',
      '-y',
      `--releasever=${d.releasever}`,
      '--disablerepo=*',
      '--enablerepo=vmstub-*',
      'install',
      ...packages,
    ];
  return [
    d.packageManager,
    '-y',
    `--releasever=${d.releasever}`,
    '--repo=vmstub-*',
    `--setopt=install_weak_deps=${weakDeps ? 'True' : 'False'}`,
    'install',
    ...packages,
  ];
}

const systemctl = (units: string[]): RootAction => chroot(['systemctl', 'enable', ...units]);
const chkconfig = (services: string[]): RootAction[] => services.map((s) => chroot(['chkconfig', s, 'on']));

/**
 * The machine-independent part of the install: the first pass, the target's package manager pointed at
 * the mirror with the keys, and the second pass. `bootConfig`: dracut's configuration and the kernel's
 * arguments for this install's root go in first, for the kernel's scriptlets (an image has its own).
 */
export function rpmBootstrapSteps(spec: InstallSpec, d: RpmDistro, bootConfig = true): Step[] {
  const fsType = rootFsType(spec);
  const steps: Step[] = [];
  const keys = stubKeys(d, spec);
  const keysFromRelease = d.keys.from === 'release-package' && !spec.keyring;

  steps.push({
    id: 'bootstrap',
    title: `Bootstrap ${d.releasePackage} and ${d.packageManager} (vmstub's RPM bootstrap, signatures required)`,
    actions: [
      { kind: 'chroot-mounts' },
      {
        kind: 'rpm-bootstrap',
        repos: rpmRepos(d, spec),
        packages: firstPassPackages(d),
        dbpath: d.rpmdb.path,
        keys,
        ...(keysFromRelease ? { keysFromFirstPackage: d.keys.files } : {}),
        // Only for the distribution's own key: a keyring the user gives is held to the current policy.
        ...(d.sha1KeyBindings && !spec.keyring ? { sha1KeyBindings: true } : {}),
      },
    ],
  });

  const prepare: Action[] = [
    { kind: 'copy-in', from: '/etc/resolv.conf', path: '/etc/resolv.conf' },
    {
      kind: 'write',
      path: `/etc/${d.packageManager === 'yum' ? 'yum' : 'dnf'}/vars/releasever`,
      content: `${d.releasever}\n`,
    },
    ...keys.map((k, i): Action => ({ kind: 'copy-in', from: k, path: targetKeyPath(i) })),
    { kind: 'write', path: INSTALL_REPO_FILE, content: yumRepoFile(d, spec) },
  ];
  if (bootConfig)
    prepare.push(
      // In place before the kernel's scriptlets build the initramfs and write its boot entry.
      { kind: 'write', path: '/etc/dracut.conf.d/vmstub.conf', content: dracutConf(fsType) },
      { kind: 'write', path: '/etc/kernel/cmdline', content: kernelCmdline(ROOT_UUID, fsType) },
    );
  if (d.rpmdb.backend === 'bdb') {
    // The stub's rpm writes sqlite, which this release's rpm cannot read: its own rpm starts the database.
    prepare.push({ kind: 'remove', path: d.rpmdb.path }, chroot(['rpm', '--initdb']));
  }
  const keyFiles = keysFromRelease ? `${TARGET_KEY_DIR}/*` : `${TARGET_KEY_DIR}/RPM-GPG-KEY-vmstub-*`;
  prepare.push(chroot(['sh', '-c', `for k in ${keyFiles}; do rpm --import "$k"; done`]));
  steps.push({
    id: 'prepare',
    title: `Point ${d.packageManager} at the mirror, with the keys; configure dracut and the kernel's arguments`,
    actions: prepare,
  });

  steps.push({
    id: 'packages',
    title: `Install the system with the target's own ${d.packageManager}`,
    actions: [chroot(packageManagerArgv(d, systemPackages(d, spec)))],
  });
  return steps;
}

/**
 * Where the installed system's package manager looks afterwards: the release's own repository files,
 * or vmstub's (for the mirror asked for, or an archived release whose own files name dead mirrors).
 */
export function rpmRepoStep(spec: InstallSpec, d: RpmDistro): Step & { actions: RootAction[] } {
  const repos: RootAction[] =
    spec.mirror || d.archived
      ? [
          // The release's own repository files point at mirrors that are gone (or not the one asked for).
          chroot([
            'sh',
            '-c',
            `for f in /etc/yum.repos.d/*.repo; do [ "$f" = ${INSTALL_REPO_FILE} ] || mv "$f" "$f.vmstub-disabled"; done`,
          ]),
        ]
      : [{ kind: 'remove', path: INSTALL_REPO_FILE }];
  return {
    id: 'repos',
    title:
      spec.mirror || d.archived
        ? `Keep vmstub's repository definitions (${spec.mirror ? 'the mirror asked for' : 'the release is archived'})`
        : "Leave the release's own repository definitions",
    actions: repos,
  };
}

/** DHCP on the network, names answered (resolved, or avahi), and the services that do it enabled. */
export function rpmNetworkActions(d: RpmDistro): RootAction[] {
  const net: RootAction[] = [];
  if (d.network === 'ifcfg') {
    net.push({ kind: 'write', path: '/etc/sysconfig/network-scripts/ifcfg-eth0', content: ifcfgEth0() });
  } else {
    net.push({
      kind: 'write',
      path: '/etc/NetworkManager/system-connections/vmstub-ethernet.nmconnection',
      content: nmKeyfile(d),
      mode: 0o600,
    });
  }
  if (d.nameService === 'resolved') {
    net.push(...resolvedActions());
  } else {
    // The network service writes it at boot; the stub's copy served only the install.
    net.push({ kind: 'remove', path: '/etc/resolv.conf' });
  }
  const services =
    d.init === 'upstart'
      ? ['network', 'sshd', 'qemu-ga', 'avahi-daemon', 'acpid']
      : [
          'NetworkManager.service',
          'sshd.service',
          d.nameService === 'resolved' ? 'systemd-resolved.service' : 'avahi-daemon.service',
        ];
  net.push(...(d.init === 'upstart' ? chkconfig(services) : [systemctl(services)]));
  return net;
}

export function buildRpmPlan(spec: InstallSpec, d: RpmDistro): Plan {
  const fsType = rootFsType(spec);
  const steps: Step[] = [
    ...targetSteps(spec, d.kernelSeries, d.xfsV4),
    ...rpmBootstrapSteps(spec, d),
    rpmRepoStep(spec, d),
  ];

  const system: Action[] = [
    fstabAction(fsType, d.init === 'systemd'),
    hostsAction(spec),
    localtimeAction(spec),
  ];
  if (d.init === 'upstart') {
    system.push(
      { kind: 'write', path: '/etc/sysconfig/network', content: sysconfigNetwork(spec.hostname) },
      { kind: 'write', path: '/etc/sysconfig/i18n', content: localeConf(spec.locale) },
      { kind: 'write', path: '/etc/sysconfig/clock', content: `ZONE="${spec.timezone}"\n` },
    );
  } else {
    system.push(
      hostnameAction(spec),
      { kind: 'write', path: '/etc/locale.conf', content: localeConf(spec.locale) },
      machineIdReset,
    );
  }
  steps.push({ id: 'system', title: 'Configure fstab, host name, time zone and locale', actions: system });

  steps.push({
    id: 'network',
    title:
      d.network === 'ifcfg'
        ? 'Configure the network (ifcfg: DHCP on eth0; avahi for mDNS)'
        : `Configure the network (NetworkManager: DHCPv4/v6 on every ethernet interface; ${d.nameService === 'resolved' ? 'LLMNR and mDNS by resolved' : 'mDNS by avahi'})`,
    actions: rpmNetworkActions(d),
  });

  steps.push(accountsStep(spec, 'wheel'));
  steps.push(
    sshStep(d.sshdDropIn ? sshdDropIn(spec) : chroot(sshdPasswordSed(spec)), [
      // EL6's OpenSSH predates ssh-keygen -A.
      d.init === 'upstart'
        ? chroot(['ssh-keygen', '-q', '-t', 'rsa', '-N', '', '-f', '/etc/ssh/ssh_host_rsa_key'])
        : { kind: 'host-keys' },
    ]),
  );
  steps.push(...finalSteps(spec));
  return { spec, distro: d, steps };
}
