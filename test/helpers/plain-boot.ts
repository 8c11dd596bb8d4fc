/**
 * Boots a live medium by plain QEMU, the way a user (or libvirt, or a real machine) attaches one, not
 * through vmstub's runner: the ISO in a SATA (AHCI) CD drive on q35, in an IDE CD drive on the i440FX
 * PC, or as a USB stick on an xHCI controller; with SeaBIOS or with OVMF. Waits for the live system's
 * login prompt on the serial console.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export type Drive = 'sata-cd' | 'ide-cd' | 'usb-stick';
export type Firmware = 'seabios' | 'ovmf';

/** Debian's OVMF (package ovmf), as a user points QEMU at it. */
const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

/** The kernel's line that shows the medium was found on that kind of drive. */
export const DRIVE_SEEN: Record<Drive, RegExp> = {
  'sata-cd': /ahci \S+: AHCI \d/,
  'ide-cd': /ata\d+\.\d+: ATAPI: QEMU DVD-ROM/,
  'usb-stick': /usb-storage \S+: USB Mass Storage device detected/,
};

/** QEMU's arguments for a medium in one drive kind, with one firmware (vars: the OVMF variables copy). */
export function plainQemuArgs(medium: string, drive: Drive, firmware: Firmware, vars: string): string[] {
  const machine = drive === 'ide-cd' ? 'pc' : 'q35';
  const media =
    drive === 'usb-stick'
      ? [
          '-device',
          'qemu-xhci,id=xhci',
          '-drive',
          `if=none,id=stick,file=${medium},format=raw,readonly=on`,
          '-device',
          'usb-storage,bus=xhci.0,drive=stick,bootindex=0',
        ]
      : ['-drive', `file=${medium},media=cdrom,readonly=on`, '-boot', 'd'];
  const flash =
    firmware === 'ovmf'
      ? [
          '-drive',
          `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
          '-drive',
          `if=pflash,format=raw,unit=1,file=${vars}`,
        ]
      : [];
  return [
    ...['-machine', machine, '-accel', 'tcg', '-m', '2048', '-smp', '1'],
    ...['-display', 'none', '-monitor', 'none', '-nic', 'none'],
    ...flash,
    ...media,
  ];
}

/**
 * Boots medium in drive with firmware until the serial console shows 'login:' (resolves with the
 * console) or timeoutMs passes, QEMU exits, or dracut gives up (rejects with the console's tail).
 */
export function bootToLogin(
  medium: string,
  drive: Drive,
  firmware: Firmware,
  dir: string,
  timeoutMs: number,
): Promise<string> {
  const tag = `${drive}-${firmware}`;
  const serial = join(dir, `${tag}.console`);
  const vars = join(dir, `${tag}.vars`);
  rmSync(serial, { force: true });
  if (firmware === 'ovmf') {
    if (!existsSync(OVMF_CODE)) throw new Error(`${OVMF_CODE} is missing (apt-get install ovmf)`);
    copyFileSync(OVMF_VARS, vars);
  }
  const qemu = spawn(
    'qemu-system-x86_64',
    [...plainQemuArgs(medium, drive, firmware, vars), '-serial', `file:${serial}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  qemu.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const console_ = () => (existsSync(serial) ? readFileSync(serial, 'utf8') : '');
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const fail = (why: string) => {
      clearInterval(poll);
      qemu.kill('SIGKILL');
      reject(new Error(`${tag}: ${why}\n${stderr}${console_().slice(-3000)}`));
    };
    const poll = setInterval(() => {
      const text = console_();
      if (/login: /.test(text)) {
        clearInterval(poll);
        qemu.kill('SIGKILL');
        resolve(text);
      } else if (/dracut Warning: Could not boot|Entering emergency mode/.test(text)) {
        fail('the live system did not find its medium');
      } else if (Date.now() > deadline) fail(`no login prompt in ${timeoutMs / 1000} s`);
    }, 1000);
    qemu.on('exit', (code) => {
      if (Date.now() <= deadline && !/login: /.test(console_())) fail(`QEMU exited (${code})`);
    });
  });
}
