/**
 * The files an install writes, each a pure function of the spec and the catalog entry, so every one of
 * them is tested as a readable snapshot (test/fixtures/snapshots/).
 */
import { DEFAULT_SHELL } from '../config/fields.js';
import type { DebDistro } from '../catalog/types.js';
import { rpmvercmp } from '../util/version.js';
import type { Filesystem, InstallSpec } from './spec.js';
import { HANDOFF_LUKS_KEY } from '../boot/initrd-key.js';

/** Where the installer keeps the mirror's keyring in the target when the spec brings its own. */
export const CUSTOM_KEYRING = '/etc/apt/keyrings/vmstub-mirror.gpg';

export interface Mirrors {
  mirror: string;
  securityMirror: string;
}

export function debMirrors(d: DebDistro, spec: InstallSpec): Mirrors {
  const mirror = spec.mirror ?? d.mirror[spec.arch];
  const securityMirror = spec.securityMirror ?? (spec.mirror ? spec.mirror : d.securityMirror[spec.arch]);
  if (!mirror || !securityMirror) throw new Error(`${d.name} has no mirror for ${spec.arch}`);
  return { mirror, securityMirror };
}

/** deb822 sources: the release and its updates from the mirror, security from the security mirror. */
export function aptSources(d: DebDistro, spec: InstallSpec): string {
  return debSources(d, debMirrors(d, spec), spec.keyring ? CUSTOM_KEYRING : d.keyring);
}

/** deb822 sources for given mirrors (an image's build mirror, then the one written into it). */
export function debSources(d: DebDistro, m: Mirrors, signedBy: string): string {
  const block = (uri: string, suites: string[]) =>
    [
      `Types: deb`,
      `URIs: ${uri}`,
      `Suites: ${suites.join(' ')}`,
      `Components: ${d.components.join(' ')}`,
      `Signed-By: ${signedBy}`,
    ].join('\n');
  return (
    [block(m.mirror, [d.suite, d.updatesSuite]), block(m.securityMirror, [d.securitySuite])].join('\n\n') +
    '\n'
  );
}

export const aptSourcesPath = (d: DebDistro): string => `/etc/apt/sources.list.d/${d.vendor}.sources`;

export function aptProxy(proxy: string): string {
  return `Acquire::http::Proxy "${proxy}";\n`;
}

/** Any ethernet interface, DHCPv4 and v6, names resolvable by LLMNR and mDNS. */
export function networkdEthernet(): string {
  return ['[Match]', 'Type=ether', '', '[Network]', 'DHCP=yes', 'LLMNR=yes', 'MulticastDNS=yes', ''].join(
    '\n',
  );
}

export const NETPLAN_ID = 'vmstub-ethernet';

/** Ubuntu's way: netplan, rendered by networkd; every interface whose name starts with e. */
export function netplanEthernet(): string {
  return [
    'network:',
    '  version: 2',
    '  renderer: networkd',
    '  ethernets:',
    `    ${NETPLAN_ID}:`,
    '      match:',
    '        name: "e*"',
    '      dhcp4: true',
    '      dhcp6: true',
    '',
  ].join('\n');
}

/** netplan cannot say MulticastDNS; a drop-in for the .network file it generates can. */
export function netplanNetworkdDropIn(): string {
  return ['[Network]', 'LLMNR=yes', 'MulticastDNS=yes', ''].join('\n');
}

export function resolvedConf(): string {
  return ['[Resolve]', 'LLMNR=yes', 'MulticastDNS=yes', ''].join('\n');
}

/**
 * fstab entries are by UUID (the device may be named differently on another hypervisor). With growRoot
 * the root grows to fill its disk at every boot (systemd-growfs, systemd 236 and later; util-linux's
 * mount ignores x-* options), so `vmstub disk grow` on a stopped instance needs nothing more. Not for
 * upstart's releases: their mount(8) (util-linux-ng 2.17) would hand the option to the kernel.
 */
export function fstab(uuid: string, fs: Filesystem | 'virtiofs', growRoot: boolean): string {
  if (fs === 'virtiofs') return '# / is the virtiofs share tagged fs (vmstub).\n';
  const pass = fs === 'ext4' ? 1 : 0;
  const options = growRoot ? 'defaults,x-systemd.growfs' : 'defaults';
  return `# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=${uuid} / ${fs} ${options} 0 ${pass}\n`;
}

/**
 * The installed kernel's own arguments, for /etc/kernel/cmdline: kernel-install's plugins (EL's grub2
 * one) put it in the Boot Loader Specification entry they write. Without it they take the running
 * kernel's command line, which in the stub is the stub's.
 */
export function kernelCmdline(uuid: string, fs: Filesystem | 'virtiofs'): string {
  return fs === 'virtiofs' ? 'root=fs rootfstype=virtiofs rw\n' : `root=UUID=${uuid} rootfstype=${fs} ro\n`;
}

export function hosts(hostname: string): string {
  return [
    '127.0.0.1\tlocalhost',
    `127.0.1.1\t${hostname}`,
    '',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    '',
  ].join('\n');
}

export function localeConf(locale: string): string {
  return `LANG=${locale}\n`;
}

/** The /etc/locale.gen line for a locale (C.UTF-8 needs none: it is built into glibc). */
export function localeGenLine(locale: string): string | undefined {
  if (/^(C|POSIX|C\.UTF-8)$/.test(locale)) return undefined;
  const base = locale.replace(/\.(utf8|UTF-8)/, '.UTF-8');
  return `${base} UTF-8\n`;
}

export function keyboardConf(layout: string): string {
  return [
    'XKBMODEL="pc105"',
    `XKBLAYOUT="${layout}"`,
    'XKBVARIANT=""',
    'XKBOPTIONS=""',
    'BACKSPACE="guess"',
    '',
  ].join('\n');
}

/**
 * The commands that make an account: groups the system may lack (groupadd -f), then useradd. groups and
 * shell may be missing from a spec an older vmstub recorded (vmstub resume reads it back).
 */
export function userAddArgvs(
  u: { name: string; sudo: boolean; groups?: string[]; shell?: string },
  sudoGroup: string,
): string[][] {
  const extra = (u.groups ?? []).filter((g) => g !== sudoGroup);
  const groups = [...(u.sudo ? [sudoGroup] : []), ...extra];
  return [
    ...extra.map((g) => ['groupadd', '-f', g]),
    [
      'useradd',
      '--create-home',
      '--shell',
      u.shell ?? DEFAULT_SHELL,
      ...(groups.length ? ['--groups', groups.join(',')] : []),
      u.name,
    ],
  ];
}

export function sudoers(user: string): string {
  return `${user} ALL=(ALL:ALL) NOPASSWD: ALL\n`;
}

export function authorizedKeys(keys: string[]): string {
  return keys.join('\n') + (keys.length ? '\n' : '');
}

/**
 * An initramfs with what a VM needs and no more: smaller means faster to load and to kexec. gzip, not
 * Debian's zstd: under TCG the kernel took 21.6 s to unpack a 6.9 MB zstd initramfs of Debian 12 and
 * 1.7 s for the same one in gzip (docs/benchmarks.md); under KVM either takes a fraction of a second.
 */
export function initramfsConf(): string {
  return [
    '# vmstub: a small initramfs with the modules listed in ../modules.',
    'MODULES=list',
    '# vmstub: gzip unpacks many times faster than zstd in an emulated (TCG) guest.',
    'COMPRESS=gzip',
    '',
  ].join('\n');
}

export function initramfsModules(fs: Filesystem | 'virtiofs', encrypted = false): string {
  return (
    [
      // the key script of an encrypted root reads the host's passphrase through it
      encrypted ? 'qemu_fw_cfg' : undefined,
      'virtio_pci',
      'virtio_blk',
      'virtio_scsi',
      'virtio_net',
      'virtio_console',
      'virtiofs',
      fs === 'virtiofs' ? undefined : fs,
    ]
      .filter(Boolean)
      .join('\n') + '\n'
  );
}

/** Where the installed system keeps the encrypted root's key script (crypttab's keyscript=). */
export const LUKS_KEYSCRIPT = '/usr/lib/vmstub/luks-key';

/** The encrypted root in crypttab (source: LABEL=, UUID= or a path): opened in the initramfs, its passphrase from the key script. */
export function crypttab(mapping: string, source: string): string {
  return `# vmstub\n${mapping} ${source} none luks,discard,initramfs,keyscript=${LUKS_KEYSCRIPT}\n`;
}

/**
 * crypttab's key script (run in the initramfs, prints the passphrase): from the boot handoff, which
 * opened the root already and passed the passphrase on in memory; else from the host (fw_cfg, an
 * instance the host unlocks); else typed on the console. A passphrase that failed is not offered again.
 */
export function luksKeyScript(fwCfgPath: string): string {
  return [
    '#!/bin/sh',
    '# vmstub: the passphrase of the encrypted root (crypttab keyscript)',
    'if [ "${CRYPTTAB_TRIED:-0}" = 0 ]; then',
    `\tif [ -r ${HANDOFF_LUKS_KEY} ]; then cat ${HANDOFF_LUKS_KEY}; exit 0; fi`,
    '\tmodprobe -q qemu_fw_cfg 2>/dev/null',
    `\tf=${fwCfgPath}`,
    '\tif [ -r "$f" ]; then cat "$f"; exit 0; fi',
    'fi',
    'exec /lib/cryptsetup/askpass "Passphrase for the encrypted root ($CRYPTTAB_NAME): "',
    '',
  ].join('\n');
}

/** sshd: keys only, unless some account was given a password. */
export function sshdConf(spec: InstallSpec): string {
  const passwords = Boolean(spec.root.passwordHash) || spec.users.some((u) => u.passwordHash);
  return ['# vmstub', `PasswordAuthentication ${passwords ? 'yes' : 'no'}`, ''].join('\n');
}

const XFS_LTS = ['4.19', '5.4', '5.10', '5.15', '6.1', '6.6', '6.12'];

/**
 * mkfs for the release's kernel: xfsprogs ships the feature sets of each LTS kernel
 * (/usr/share/xfsprogs/mkfs/lts_*.conf), e2fsprogs' orphan_file needs 5.15. With wipe, the tools are
 * told to overwrite.
 */
export function mkfsArgv(
  fs: Filesystem,
  kernelSeries: string,
  device: string,
  wipe: boolean,
  xfsV4 = false,
): string[] {
  if (fs === 'xfs' && xfsV4) {
    // EL6/EL7 kernels boot from XFS without metadata CRCs (v4) and without the directory file type.
    return ['mkfs.xfs', '-q', ...(wipe ? ['-f'] : []), '-m', 'crc=0', '-n', 'ftype=0', device];
  }
  if (fs === 'xfs') {
    // EL8's 4.18 has everything of 4.19's set that it needs (backported), so 4.19 is the oldest set.
    const lts =
      [...XFS_LTS].reverse().find((v) => rpmvercmp(v, kernelSeries) <= 0) ??
      (rpmvercmp(kernelSeries, '4.18') >= 0 ? '4.19' : undefined);
    if (!lts) throw new Error(`no XFS feature set for kernel ${kernelSeries}`);
    return [
      'mkfs.xfs',
      '-q',
      ...(wipe ? ['-f'] : []),
      '-c',
      `options=/usr/share/xfsprogs/mkfs/lts_${lts}.conf`,
      device,
    ];
  }
  if (fs === 'btrfs') return ['mkfs.btrfs', '-q', ...(wipe ? ['-f'] : []), device];
  const features = rpmvercmp(kernelSeries, '5.15') < 0 ? ['-O', '^orphan_file'] : [];
  return ['mkfs.ext4', '-q', ...(wipe ? ['-F'] : []), ...features, device];
}

/**
 * dracut: host-only (the stub runs on the same virtual hardware the system will), with the virtio
 * drivers and the root filesystem named so they are there whatever it detects; the kernel command line
 * comes from the boot handoff, not the initramfs.
 */
export function dracutConf(fs: Filesystem | 'virtiofs'): string {
  return [
    '# vmstub: a small initramfs for a QEMU VM',
    'hostonly="yes"',
    'hostonly_cmdline="no"',
    'add_drivers+=" virtio_pci virtio_blk virtio_scsi virtio_net virtio_console virtiofs "',
    `filesystems+=" ${fs} "`,
    '',
  ].join('\n');
}
