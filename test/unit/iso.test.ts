import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ISO_PLATFORMS,
  grubConfig,
  isoPlatform,
  liveCommandLine,
  liveDracutConfig,
  parseIsoReport,
  volumeLabel,
  xorrisoArgs,
} from '../../src/image/iso.js';

test('volume labels are ISO 9660 d-characters, at most 32', () => {
  assert.equal(volumeLabel('web-1.test'), 'WEB_1_TEST');
  assert.equal(volumeLabel('a'.repeat(40)).length, 32);
});

test('the live entry finds the medium by its label, keeps changes in memory and speaks on the serial port', () => {
  const cfg = grubConfig('Debian 12 "web"', 'WEB', ISO_PLATFORMS.x86_64!);
  assert.match(cfg, /^serial --unit=0 --speed=115200$/m);
  assert.match(cfg, /^terminal_output console serial$/m);
  assert.match(cfg, /menuentry "Debian 12 web \(live\)"/);
  const cmdline = liveCommandLine('WEB', ISO_PLATFORMS.x86_64!.consoles);
  assert.match(cmdline, /root=live:CDLABEL=WEB rd\.live\.image/);
  assert.match(cmdline, /rd\.live\.overlay\.overlayfs=1/);
  assert.match(cmdline, /console=ttyS0,115200n8$/, 'the serial console last: it becomes /dev/console');
});

test("the live initramfs carries the drivers of a PC's CD drives and USB sticks alone, and no LUKS", () => {
  const pc = liveDracutConfig(ISO_PLATFORMS.x86_64!);
  const drivers = /^drivers\+=" ([^"]*) "$/m.exec(pc)?.[1]?.split(' ') ?? [];
  for (const d of ['ahci', 'ata_piix', 'sr_mod', 'xhci_pci', 'usb_storage', 'uas', 'virtio_scsi', 'nvme'])
    assert.ok(drivers.includes(d), `${d} is missing`);
  assert.match(pc, /add_dracutmodules\+=" dmsquash-live "/);
  assert.match(pc, /omit_dracutmodules\+=" crypt /);
  assert.match(pc, /^compress="zstd"$/m);
  // arm64 boards find their media through drivers no list here keeps up with: dracut's generic set.
  assert.doesNotMatch(liveDracutConfig(ISO_PLATFORMS.aarch64!), /drivers\+=/);
});

test('xorriso: BIOS El Torito with the hybrid MBR, the ESP appended as a GPT partition and booted for UEFI', () => {
  const args = xorrisoArgs('/t', '/w/efiboot.img', '/o/web.iso', 'WEB', '/usr/lib/grub/i386-pc');
  const after = (flag: string, n = 1) => args.slice(args.indexOf(flag) + 1, args.indexOf(flag) + 1 + n);
  assert.deepEqual(after('-V'), ['WEB']);
  assert.deepEqual(after('-append_partition', 3), [
    '2',
    'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
    '/w/efiboot.img',
  ]);
  assert.deepEqual(after('-e'), ['--interval:appended_partition_2:all::']);
  assert.deepEqual(after('-b'), ['boot/grub/eltorito.img']);
  assert.ok(args.includes('--grub2-boot-info') && args.includes('-appended_part_as_gpt'));
  assert.equal(args.at(-1), '/t');
});

test('aarch64: a UEFI-only ISO (no MBR, no BIOS entry), its menu on the firmware console, the kernel on ttyAMA0', () => {
  const arm = isoPlatform('aarch64');
  const args = xorrisoArgs('/t', '/w/efiboot.img', '/o/web.iso', 'WEB', arm.bios?.dir);
  assert.ok(!args.includes('-b') && !args.includes('--grub2-mbr') && !args.includes('-eltorito-alt-boot'));
  assert.deepEqual(args.slice(args.indexOf('-e') + 1, args.indexOf('-e') + 2), [
    '--interval:appended_partition_2:all::',
  ]);
  assert.equal(arm.efi.loader, 'BOOTAA64.EFI');
  const cfg = grubConfig('Debian 12 web', 'WEB', arm);
  assert.doesNotMatch(cfg, /serial/);
  assert.match(cfg, /console=tty0 console=ttyAMA0,115200n8$/m);
  assert.throws(() => isoPlatform('riscv64'), /iso: no riscv64 ISOs/);
});

// What xorriso 1.5.4 (Debian 12) reports for an ISO made with the arguments above.
const REPORT = `Volume id    : 'WEB'
El Torito catalog  : 62  1
El Torito images   :   N  Pltf  B   Emul  Ld_seg  Hdpt  Ldsiz         LBA
El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4          63
El Torito boot img :   2  UEFI  y   none  0x0000  0x00   4096         117
GPT type GUID      :   1  a2a0d0ebe5b9334487c068b6b72699c7
GPT type GUID      :   2  28732ac11ff8d211ba4b00a0c93ec93b
`;

test('the ISO report: label, both boot entries, the ESP', () => {
  assert.deepEqual(parseIsoReport(REPORT), { label: 'WEB', bios: true, uefi: true, esp: true });
  const biosOnly = REPORT.split('\n')
    .filter((l) => !/UEFI|28732ac1/.test(l))
    .join('\n');
  assert.deepEqual(parseIsoReport(biosOnly), { label: 'WEB', bios: true, uefi: false, esp: false });
});
