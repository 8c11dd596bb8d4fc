/**
 * A Gentoo install: the newest systemd stage3, verified; the ebuild repository through emerge-webrsync
 * (which verifies the snapshot with the key the verified stage3 carries); a binary kernel with a dracut
 * initramfs and the rest from Gentoo's binary package host; systemd-networkd and sshd.
 */
import type { GentooDistro } from '../../catalog/types.js';
import { dracutConf, localeConf, networkdEthernet } from '../render.js';
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
import { chroot, rootFsType, type Plan, type RootAction, type Step } from './types.js';

export function gentooPackageUse(): string {
  return [
    '# vmstub: kernels are installed with a dracut initramfs',
    'sys-kernel/installkernel dracut',
    '',
  ].join('\n');
}

/** Where Portage fetches from, as make.conf says it: the line the install appends for a mirror of the user's. */
export const gentooMirrorsLine = (mirror: string) => `GENTOO_MIRRORS="${mirror}"`;

/**
 * The machine-independent part of the install: the verified stage3, the ebuild repository, the kernel
 * and the services. `bootConfig`: dracut's root driver for this install goes in first (an image has its own).
 */
export function gentooBootstrapSteps(spec: InstallSpec, d: GentooDistro, bootConfig = true): Step[] {
  const stage3 = d.stage3[spec.arch];
  if (!stage3) throw new Error(`${d.name} has no stage3 for ${spec.arch}`);
  const mirror = spec.mirror ?? d.mirror;
  const fsType = rootFsType(spec);
  const steps: Step[] = [];
  steps.push({
    id: 'stage3',
    title: `Unpack the newest ${stage3.flavour}, its signature and checksum verified`,
    actions: [
      {
        kind: 'gentoo-stage3',
        mirror,
        dir: stage3.dir,
        flavour: stage3.flavour,
        releaseKey: spec.keyring ? { file: spec.keyring } : d.releaseKey,
      },
    ],
  });
  steps.push({
    id: 'portage',
    title: 'Fetch the ebuild repository (emerge-webrsync verifies it) and install the kernel and services',
    actions: [
      { kind: 'chroot-mounts' },
      { kind: 'copy-in', from: '/etc/resolv.conf', path: '/etc/resolv.conf' },
      { kind: 'write', path: '/etc/portage/package.use/vmstub', content: gentooPackageUse() },
      ...(bootConfig
        ? [{ kind: 'write', path: '/etc/dracut.conf.d/vmstub.conf', content: dracutConf(fsType) } as const]
        : []),
      ...(spec.mirror
        ? [chroot(['sh', '-c', `echo '${gentooMirrorsLine(spec.mirror)}' >> /etc/portage/make.conf`])]
        : []),
      chroot(['emerge-webrsync', '--quiet']),
      chroot(gentooEmergeArgv([...d.packages, ...spec.packages])),
    ],
  });
  return steps;
}

/** emerge of binary packages from Gentoo's binary package host, those installed already left as they are. */
export const gentooEmergeArgv = (atoms: string[]) => [
  'emerge',
  '--getbinpkg',
  '--noreplace',
  '--quiet-build=y',
  ...atoms,
];

/** systemd-networkd with DHCP on every ethernet interface, resolved, and sshd. */
export const gentooNetworkActions = (): RootAction[] => [
  { kind: 'write', path: '/etc/systemd/network/80-vmstub-ethernet.network', content: networkdEthernet() },
  ...resolvedActions(),
  chroot(['systemctl', 'enable', 'systemd-networkd.service', 'systemd-resolved.service', 'sshd.service']),
];

export function buildGentooPlan(spec: InstallSpec, d: GentooDistro): Plan {
  const fsType = rootFsType(spec);
  const steps: Step[] = [...targetSteps(spec, d.kernelSeries), ...gentooBootstrapSteps(spec, d)];
  steps.push({
    id: 'system',
    title: 'Configure fstab, host name, time zone and locale',
    actions: [
      fstabAction(fsType, true),
      hostnameAction(spec),
      hostsAction(spec),
      localtimeAction(spec),
      ...localeGenActions(spec),
      { kind: 'write', path: '/etc/locale.conf', content: localeConf(spec.locale) },
      machineIdReset,
    ],
  });
  steps.push({
    id: 'network',
    title: 'Configure the network (networkd: DHCPv4/v6 on every ethernet interface; LLMNR and mDNS)',
    actions: gentooNetworkActions(),
  });
  steps.push(accountsStep(spec, 'wheel'));
  steps.push(sshStep(sshdDropIn(spec), [{ kind: 'host-keys' }]));
  steps.push(...finalSteps(spec));
  return { spec, distro: d, steps };
}
