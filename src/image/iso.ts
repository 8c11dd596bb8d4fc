/**
 * A hybrid live ISO that boots with BIOS and UEFI, from a CD drive and written to a disk: GRUB's El
 * Torito image for BIOS with its hybrid MBR, and an EFI system partition appended as a GPT partition
 * (the layout Fedora's lorax and osbuild use; docs/images.md). The live system is the image's squashfs,
 * booted by its dracut initramfs (dmsquash-live) with the changes in memory. An aarch64 ISO has the
 * UEFI half alone (ISO_PLATFORMS).
 */
import { copyFileSync, constants, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { usageError, VmstubError } from '../util/errors.js';
import type { Arch } from '../util/arch.js';
import { requireTool, run, runChecked } from '../util/exec.js';
import { formatSize, parseSize } from '../util/size.js';

/** The GPT type of an EFI system partition. */
const ESP_TYPE = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

/** GRUB's modules built into each loader: enough to find the ISO, read grub.cfg and boot Linux on a serial console. */
const GRUB_COMMON = [
  'iso9660',
  'normal',
  'configfile',
  'linux',
  'search',
  'search_label',
  'serial',
  'terminal',
  'echo',
  'test',
  'boot',
];
export const GRUB_BIOS_MODULES = ['biosdisk', 'part_msdos', 'part_gpt', ...GRUB_COMMON];
export const GRUB_EFI_MODULES = ['part_gpt', 'part_msdos', 'fat', 'all_video', ...GRUB_COMMON];

/** What an ISO of one architecture boots with. */
export interface IsoPlatform {
  /** GRUB's BIOS platform, for an El Torito BIOS entry and the hybrid MBR; none where PCs are not. */
  bios?: { target: string; dir: string; package: string };
  /** GRUB's EFI platform and the removable-media loader name the firmware looks for. */
  efi: { target: string; package: string; loader: string };
  /**
   * Where GRUB's EFI modules come from: the host's GRUB package, or (for a foreign architecture,
   * whose GRUB package Debian does not ship for this host) the image's own release.
   */
  grubFrom: 'host' | 'image';
  /** The live system's consoles, the last one the kernel's /dev/console. */
  consoles: string[];
  /** GRUB's menu also on its serial terminal (on the firmware's console alone, UEFI shows it there already). */
  grubSerial: boolean;
  /**
   * The only drivers the live initramfs carries (with what dracut's live module adds): enough to find the
   * medium in the drives a live ISO is booted from. The live system loads the rest from the squashfs.
   * Without it, dracut's generic set: every storage, filesystem and HBA driver, 2.5 times the size.
   */
  initramfsDrivers?: string[];
}

/** What finds a live medium on a PC or a VM: its controllers, CD and disk drivers, a keyboard for the rescue shell. */
const PC_LIVE_DRIVERS = [
  // SATA (AHCI), IDE and NVMe drives; CDs and disks on SCSI
  ...['ahci', 'ata_piix', 'ata_generic', 'pata_acpi', 'nvme', 'sr_mod', 'sd_mod', 'sg'],
  // other hypervisors' drives: virtio, Hyper-V, VMware, Xen
  ...['virtio_pci', 'virtio_blk', 'virtio_scsi', 'hv_storvsc', 'vmw_pvscsi', 'mptspi', 'xen_blkfront'],
  // USB sticks and SD cards
  ...['xhci_pci', 'ehci_pci', 'ohci_pci', 'uhci_hcd', 'usb_storage', 'uas'],
  ...['mmc_block', 'sdhci_pci', 'sdhci_acpi', 'rtsx_pci_sdmmc'],
  ...['hid_generic', 'usbhid', 'atkbd', 'i8042'],
  ...['loop', 'dm_mod', 'dm_snapshot'],
];

export const ISO_PLATFORMS: Partial<Record<Arch, IsoPlatform>> = {
  x86_64: {
    bios: { target: 'i386-pc', dir: '/usr/lib/grub/i386-pc', package: 'grub-pc-bin' },
    efi: { target: 'x86_64-efi', package: 'grub-efi-amd64-bin', loader: 'BOOTX64.EFI' },
    grubFrom: 'host',
    consoles: ['tty0', 'ttyS0,115200n8'],
    grubSerial: true,
    initramfsDrivers: PC_LIVE_DRIVERS,
  },
  aarch64: {
    efi: { target: 'arm64-efi', package: 'grub-efi-arm64-bin', loader: 'BOOTAA64.EFI' },
    grubFrom: 'image',
    consoles: ['tty0', 'ttyAMA0,115200n8'],
    grubSerial: false,
  },
};

/** Why an image of arch has no ISO. */
export const noIsoReason = (arch: Arch): string =>
  `iso: no ${arch} ISOs (vmstub makes them for ${Object.keys(ISO_PLATFORMS).join(' and ')}); use squashfs or system`;

/** The ISO platform of arch, or a clear refusal. */
export function isoPlatform(arch: Arch): IsoPlatform {
  const p = ISO_PLATFORMS[arch];
  if (!p) throw new VmstubError(noIsoReason(arch));
  return p;
}

/**
 * dracut's configuration for the live initramfs: its live module, not host-only, zstd, without the
 * modules a live root never uses before it is mounted (LUKS, LVM's resume, persistent memory, virtiofs).
 */
export function liveDracutConfig(platform: IsoPlatform): string {
  return [
    'add_dracutmodules+=" dmsquash-live "',
    'omit_dracutmodules+=" crypt resume nvdimm virtiofs lunmask "',
    'hostonly="no"',
    'compress="zstd"',
    ...(platform.initramfsDrivers ? [`drivers+=" ${platform.initramfsDrivers.join(' ')} "`] : []),
    '',
  ].join('\n');
}

/** Where GRUB's modules for an EFI target are in a tree (/ for the host's). */
export const grubModuleDir = (tree: string, target: string): string => join(tree, 'usr/lib/grub', target);

/** An ISO 9660 volume label from an image name: d-characters, at most 32. */
export function volumeLabel(name: string): string {
  return name
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_')
    .slice(0, 32);
}

/** The kernel command line of the live system: dracut finds the medium by its label and keeps changes in memory. */
export function liveCommandLine(label: string, consoles: string[]): string {
  return [
    `root=live:CDLABEL=${label}`,
    'rd.live.image',
    'rd.live.dir=live',
    'rd.live.squashimg=filesystem.squashfs',
    // Debian 12's dracut (059) needs this for a squashfs holding a plain root tree (docs/images.md).
    'rd.live.overlay.overlayfs=1',
    ...consoles.map((c) => `console=${c}`),
  ].join(' ');
}

/** GRUB's menu, on the screen (and the first serial port): one live entry, started after a short wait. */
export function grubConfig(title: string, label: string, platform: IsoPlatform, cmdline = ''): string {
  const serial = platform.grubSerial
    ? ['serial --unit=0 --speed=115200', 'terminal_input console serial', 'terminal_output console serial']
    : [];
  return [
    ...serial,
    'set timeout=3',
    'set default=0',
    '',
    `menuentry "${title.replace(/"/g, '')} (live)" {`,
    `  linux /live/vmlinuz ${[liveCommandLine(label, platform.consoles), cmdline].filter(Boolean).join(' ')}`,
    '  initrd /live/initrd.img',
    '}',
    '',
  ].join('\n');
}

/** What the EFI loader runs first: find the ISO by its label, then read the same grub.cfg as BIOS. */
export function grubEfiEarlyConfig(label: string): string {
  return `search --no-floppy --set=root --label ${label}\nset prefix=($root)/boot/grub\nconfigfile $prefix/grub.cfg\n`;
}

/**
 * xorriso's command line for the layout above (a pure function, for tests); with no BIOS loader, the
 * ISO has the UEFI entry and the ESP alone.
 */
export function xorrisoArgs(
  tree: string,
  esp: string,
  out: string,
  label: string,
  biosDir?: string,
): string[] {
  // prettier-ignore
  const bios = biosDir ? [
    '-b', 'boot/grub/eltorito.img', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table', '--grub2-boot-info',
    '-eltorito-alt-boot',
  ] : [];
  // prettier-ignore
  return [
    '-as', 'mkisofs',
    '-o', out,
    '-R', '-J', '-joliet-long', '-iso-level', '3',
    '-V', label,
    ...(biosDir ? ['--grub2-mbr', join(biosDir, 'boot_hybrid.img')] : []),
    '-partition_offset', '16',
    '-appended_part_as_gpt',
    '-append_partition', '2', ESP_TYPE, esp,
    '-c', 'boot/boot.cat', '--boot-catalog-hide',
    ...bios,
    '-e', '--interval:appended_partition_2:all::', '-no-emul-boot',
    tree,
  ];
}

export interface IsoParts {
  kernel: string;
  initrd: string;
  squashfs: string;
  title: string;
  label: string;
  platform: IsoPlatform;
  /** GRUB's EFI modules: the host's, or those taken from the image's release. */
  grubEfiDir: string;
  /** The image's own kernel command line, after the live system's. */
  cmdline?: string;
}

const copy = (from: string, to: string) => copyFileSync(from, to, constants.COPYFILE_FICLONE);

/** Builds the ISO from its parts in work (a scratch directory) and checks it. */
export async function buildIso(p: IsoParts, work: string, out: string): Promise<void> {
  const mkimage = requireTool('grub-mkimage', 'grub-common');
  const xorriso = requireTool('xorriso', 'xorriso');
  const mkfs = requireTool('mkfs.msdos', 'dosfstools');
  const mmd = requireTool('mmd', 'mtools');
  const mcopy = requireTool('mcopy', 'mtools');
  const { bios, efi } = p.platform;
  const fromHost = p.platform.grubFrom === 'host';
  for (const [dir, pkg, host] of [
    ...(bios ? [[bios.dir, bios.package, true] as const] : []),
    [p.grubEfiDir, efi.package, fromHost] as const,
  ]) {
    try {
      statSync(join(dir, 'moddep.lst'));
    } catch {
      throw new VmstubError(
        host
          ? `${dir} is missing: install Debian's ${pkg} to build ISOs`
          : `${dir} is missing: the image's ${pkg} did not unpack (vmstub image build --no-cache makes it again)`,
      );
    }
  }
  const tree = join(work, 'tree');
  for (const d of ['live', 'boot/grub', '.disk']) mkdirSync(join(tree, d), { recursive: true });
  copy(p.kernel, join(tree, 'live/vmlinuz'));
  copy(p.initrd, join(tree, 'live/initrd.img'));
  copy(p.squashfs, join(tree, 'live/filesystem.squashfs'));
  writeFileSync(join(tree, '.disk/info'), `${p.title}\n`);
  writeFileSync(join(tree, 'boot/grub/grub.cfg'), grubConfig(p.title, p.label, p.platform, p.cmdline));
  if (bios) {
    // prettier-ignore
    await runChecked(mkimage, [
      '-O', `${bios.target}-eltorito`, '-d', bios.dir, '-p', '/boot/grub',
      '-o', join(tree, 'boot/grub/eltorito.img'),
      ...GRUB_BIOS_MODULES,
    ]);
  }
  const early = join(work, 'early.cfg');
  writeFileSync(early, grubEfiEarlyConfig(p.label));
  const loader = join(work, efi.loader);
  // prettier-ignore
  await runChecked(mkimage, [
    '-O', efi.target, '-d', p.grubEfiDir, '-p', '/boot/grub', '-c', early,
    '-o', loader,
    ...GRUB_EFI_MODULES,
  ]);
  // The ESP: the loader and room for the FAT itself, in KiB.
  const esp = join(work, 'efiboot.img');
  const kib = Math.ceil(statSync(loader).size / 1024) + 512;
  await runChecked(mkfs, ['-C', '-n', 'EFIBOOT', esp, String(kib)]);
  await runChecked(mmd, ['-i', esp, '::EFI', '::EFI/BOOT']);
  await runChecked(mcopy, ['-i', esp, loader, `::EFI/BOOT/${efi.loader}`]);
  const r = await run(xorriso, xorrisoArgs(tree, esp, out, p.label, bios?.dir), {
    timeoutMs: 30 * 60 * 1000,
    killWithParent: true,
  });
  if (r.code !== 0) {
    const why =
      r.stderr.split('\n').find((l) => /FAILURE|SORRY|No space/i.test(l)) ??
      r.stderr.trim().split('\n').pop();
    throw new VmstubError(`xorriso failed: ${why ?? 'no output'}`);
  }
  await checkIso(out, p.label, p.platform);
}

export interface IsoReport {
  label: string;
  bios: boolean;
  uefi: boolean;
  esp: boolean;
}

/** Reads back what xorriso wrote: the volume label, the BIOS and UEFI boot entries, the ESP partition. */
export function parseIsoReport(text: string): IsoReport {
  const label = /^Volume id\s*:\s*'([^']*)'/m.exec(text)?.[1] ?? '';
  const entries = text.split('\n').filter((l) => /^El Torito boot img\s*:\s*\d+\s+/.test(l));
  return {
    label,
    bios: entries.some((l) => /\sBIOS\s/.test(l)),
    uefi: entries.some((l) => /\sUEFI\s/.test(l)),
    esp: text.split('\n').some((l) => /^GPT type GUID\s*:.*28732ac11ff8d211ba4b00a0c93ec93b/i.test(l)),
  };
}

/** The ISO is what it should be, or the build fails. */
export async function checkIso(iso: string, label: string, platform: IsoPlatform): Promise<IsoReport> {
  const xorriso = requireTool('xorriso', 'xorriso');
  const r = await run(xorriso, [
    '-indev',
    iso,
    '-report_el_torito',
    'plain',
    '-report_system_area',
    'plain',
    '-pvd_info',
  ]);
  const text = r.stdout.toString('utf8') + '\n' + r.stderr;
  if (r.code !== 0)
    throw new VmstubError(`${iso} cannot be read back by xorriso: ${text.trim().split('\n').pop()}`);
  const report = parseIsoReport(text);
  const missing = [
    report.label !== label && `volume label ${label} (found '${report.label}')`,
    platform.bios && !report.bios && 'a BIOS boot entry',
    !report.uefi && 'a UEFI boot entry',
    !report.esp && 'an EFI system partition',
  ].filter(Boolean);
  if (missing.length) throw new VmstubError(`${iso} lacks ${missing.join(', ')}`);
  return report;
}

/**
 * What an ISO may be written to, by what the medium holds: 2048-byte sectors, as growisofs and xorriso
 * count them (an 80-minute CD-R, single and dual layer DVD±R, BD-R).
 */
export const ISO_MEDIA: Record<string, number> = {
  cd: 360_000 * 2048,
  dvd: 2_295_104 * 2048,
  'dvd-dl': 4_173_824 * 2048,
  bd: 12_219_392 * 2048,
  'bd-dl': 24_438_784 * 2048,
};

/** A medium by name, or a size (a USB stick's); a problem as an Error's message. */
export function isoMedium(text: string): { name: string; bytes: number } {
  if (Object.hasOwn(ISO_MEDIA, text)) return { name: text, bytes: ISO_MEDIA[text]! };
  if (!/^\s*\d/.test(text))
    throw new Error(`'${text}' is not a medium (${Object.keys(ISO_MEDIA).join(', ')}) or a size (8G)`);
  return { name: text.trim(), bytes: parseSize(text, '') };
}

/** Refuses an ISO bigger than its medium, in one line. */
export function checkIsoFits(iso: string, medium: { name: string; bytes: number } | undefined): void {
  if (!medium) return;
  const bytes = statSync(iso).size;
  if (bytes > medium.bytes)
    throw usageError(
      `the ISO is ${formatSize(bytes)}, more than ${Object.hasOwn(ISO_MEDIA, medium.name) ? `a ${medium.name}` : 'the medium'} holds (${formatSize(medium.bytes)}, medium: ${medium.name}); nothing was delivered (fewer packages, or a bigger medium: the build is cached)`,
    );
}
