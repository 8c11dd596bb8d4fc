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
import { chroot, rootFsType, type Plan, type Step } from './types.js';

export function gentooPackageUse(): string {
  return [
    '# vmstub: kernels are installed with a dracut initramfs',
    'sys-kernel/installkernel dracut',
    '',
  ].join('\n');
}

export function buildGentooPlan(spec: InstallSpec, d: GentooDistro): Plan {
  const stage3 = d.stage3[spec.arch];
  if (!stage3) throw new Error(`${d.name} has no stage3 for ${spec.arch}`);
  const mirror = spec.mirror ?? d.mirror;
  const fsType = rootFsType(spec);
  const steps: Step[] = targetSteps(spec, d.kernelSeries);
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
      { kind: 'write', path: '/etc/dracut.conf.d/vmstub.conf', content: dracutConf(fsType) },
      ...(spec.mirror
        ? [chroot(['sh', '-c', `echo 'GENTOO_MIRRORS="${spec.mirror}"' >> /etc/portage/make.conf`])]
        : []),
      chroot(['emerge-webrsync', '--quiet']),
      chroot(['emerge', '--getbinpkg', '--noreplace', '--quiet-build=y', ...d.packages, ...spec.packages]),
    ],
  });
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
    actions: [
      { kind: 'write', path: '/etc/systemd/network/80-vmstub-ethernet.network', content: networkdEthernet() },
      ...resolvedActions(),
      chroot(['systemctl', 'enable', 'systemd-networkd.service', 'systemd-resolved.service', 'sshd.service']),
    ],
  });
  steps.push(accountsStep(spec, 'wheel'));
  steps.push(sshStep(sshdDropIn(spec), [{ kind: 'host-keys' }]));
  steps.push(...finalSteps(spec));
  return { spec, distro: d, steps };
}
