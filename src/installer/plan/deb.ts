/** Debian and Ubuntu: mmdebstrap (or debootstrap) from the release's mirror, then the system's configuration. */
import type { DebDistro, NetworkRenderer } from '../../catalog/types.js';
import { DEBIAN_ARCH } from '../../util/arch.js';
import { fwCfgSysfsPath } from '../../events/protocol.js';
import { EATMYDATA_CUSTOMIZE_HOOK, EATMYDATA_EXTRACT_HOOK } from '../eatmydata.js';
import {
  CUSTOM_KEYRING,
  NETPLAN_ID,
  aptProxy,
  aptSources,
  aptSourcesPath,
  debMirrors,
  LUKS_KEYSCRIPT,
  crypttab,
  initramfsConf,
  initramfsModules,
  luksKeyScript,
  keyboardConf,
  localeConf,
  netplanEthernet,
  netplanNetworkdDropIn,
  networkdEthernet,
} from '../render.js';
import type { InstallSpec } from '../spec.js';
import {
  accountsStep,
  finalSteps,
  fstabAction,
  hostnameAction,
  hostsAction,
  localeGenActions,
  localtimeAction,
  machineIdReset,
  resolvedActions,
  sshStep,
  sshdDropIn,
  targetSteps,
} from './common.js';
import {
  HOOKS,
  LUKS_MAPPING,
  ROOT_TARBALL_DISK,
  STAGING,
  TARGET,
  chroot,
  rootFsType,
  type Action,
  type Plan,
  type RootAction,
  type Step,
} from './types.js';

/** How often apt retries a failed download (with a growing delay) before the install fails. */
const DOWNLOAD_RETRIES = 5;

/** Every package the bootstrap installs: the release's set, its kernel, the locale support asked for, extras. */
export function debPackages(d: DebDistro, spec: InstallSpec): string[] {
  const kernel = d.kernelPackage[spec.arch];
  if (!kernel) throw new Error(`${d.name} has no kernel package for ${spec.arch}`);
  // apt by name: minbase finds it through priorities, which a private mirror may not carry.
  const extra = [kernel, 'apt', ...(d.vendor === 'ubuntu' ? ['ubuntu-keyring'] : ['debian-archive-keyring'])];
  if (spec.keyboard) extra.push('keyboard-configuration');
  if (spec.encrypt) extra.push('cryptsetup-initramfs');
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

/**
 * What opens an encrypted root in the initramfs: crypttab, naming the container by its label (the same
 * in every system, so the initramfs the kernel's package makes during the bootstrap has it, and a root
 * bootstrapped on the host serves every encrypted create), and its key script.
 */
function unlockFiles(into: 'staging' | 'target'): Action[] {
  return [
    {
      kind: 'write',
      in: into,
      path: '/etc/crypttab',
      content: crypttab(LUKS_MAPPING, `LABEL=${LUKS_MAPPING}`),
    },
    {
      kind: 'write',
      in: into,
      path: LUKS_KEYSCRIPT,
      content: luksKeyScript(fwCfgSysfsPath('luksPassphrase')),
      mode: 0o755,
    },
  ];
}

/** DHCPv4/v6 on every ethernet interface through systemd-networkd (netplan's, on Ubuntu), with resolved. */
export function debNetworkActions(renderer: NetworkRenderer): RootAction[] {
  const net: RootAction[] =
    renderer === 'netplan'
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
  return [
    ...net,
    ...resolvedActions(),
    chroot(['systemctl', 'enable', 'systemd-networkd.service', 'systemd-resolved.service']),
  ];
}

/**
 * The steps that make the root filesystem from the mirror: staging the initramfs configuration and the
 * hooks, then the bootstrap tool. They run in the stub, or on the host (src/installer/root-cache.ts),
 * the same steps either way.
 */
export function debBootstrapSteps(spec: InstallSpec, d: DebDistro): Step[] {
  const fsType = rootFsType(spec);
  const steps: Step[] = [];
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
        content: initramfsModules(fsType, spec.encrypt),
      },
      ...(spec.encrypt ? unlockFiles('staging') : []),
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
        ...(spec.encrypt ? unlockFiles('target') : []),
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
  return steps;
}

/** The root filesystem the host bootstrapped, from the read-only disk it is attached as: a tar stream. */
export const unpackStep = (): Step => ({
  id: 'unpack',
  title: 'Unpack the root filesystem bootstrapped on the host',
  actions: [
    {
      kind: 'exec',
      argv: [
        'tar',
        '--extract',
        '--numeric-owner',
        '--preserve-permissions',
        '--xattrs',
        '--xattrs-include=*',
        '--acls',
        '-f',
        ROOT_TARBALL_DISK,
        '-C',
        TARGET,
      ],
    },
  ],
});

export function buildDebPlan(spec: InstallSpec, d: DebDistro): Plan {
  const fsType = rootFsType(spec);
  const steps: Step[] = targetSteps(spec, d.kernelSeries);
  if (spec.rootTarball) steps.push(unpackStep());
  else steps.push(...debBootstrapSteps(spec, d));

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

  steps.push({
    id: 'system',
    title: 'Configure fstab, host name, time zone and locale',
    actions: [
      { kind: 'chroot-mounts' },
      fstabAction(fsType, true),
      hostnameAction(spec),
      hostsAction(spec),
      localtimeAction(spec),
      { kind: 'write', path: '/etc/timezone', content: `${spec.timezone}\n` },
      ...localeGenActions(spec),
      { kind: 'write', path: '/etc/default/locale', content: localeConf(spec.locale) },
      ...(spec.keyboard
        ? [{ kind: 'write', path: '/etc/default/keyboard', content: keyboardConf(spec.keyboard) } as Action]
        : []),
      machineIdReset,
    ],
  });

  steps.push({
    id: 'network',
    title: `Configure the network (${d.network}: DHCPv4/v6 on every ethernet interface; LLMNR and mDNS)`,
    actions: debNetworkActions(d.network),
  });

  steps.push(accountsStep(spec, 'sudo'));

  steps.push(
    sshStep(sshdDropIn(spec), [{ kind: 'host-keys' }, chroot(['systemctl', 'enable', 'ssh.service'])]),
  );
  steps.push(...finalSteps(spec));
  return { spec, distro: d, steps };
}
