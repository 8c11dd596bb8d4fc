/**
 * fw_cfg for machines that have none (riscv64's virt in QEMU 7.2): the same items as a POSIX tar
 * archive on a small read-only virtio disk with serial FW_CFG_DISK_SERIAL. The stub's init unpacks it
 * into FW_CFG_FALLBACK_DIR, where fwCfgGuestPath finds each item under its fw_cfg name.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export const FW_CFG_DISK_SERIAL = 'vmstub-fwcfg';

export type FwCfgEntry = { name: string; file: string } | { name: string; string: string };

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One ustar member: a 512-byte header, then the data padded to 512 bytes. */
function member(name: string, data: Buffer): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`fw_cfg name ${name} is longer than 100 bytes`);
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o600, 8), 100, 'latin1');
  header.write(octal(0, 8), 108, 'latin1');
  header.write(octal(0, 8), 116, 'latin1');
  header.write(octal(data.length, 12), 124, 'latin1');
  header.write(octal(0, 12), 136, 'latin1');
  header.write('        ', 148, 'latin1'); // the checksum counts itself as spaces
  header.write('0', 156, 'latin1');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 7) + ' ', 148, 'latin1');
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding]);
}

/** The archive for these items (later items of the same name win, as with -fw_cfg). */
export function fwCfgArchive(items: FwCfgEntry[]): Buffer {
  const byName = new Map<string, Buffer>();
  for (const item of items)
    byName.set(item.name, 'file' in item ? readFileSync(item.file) : Buffer.from(item.string, 'utf8'));
  return Buffer.concat([...[...byName].map(([name, data]) => member(name, data)), Buffer.alloc(1024)]);
}

export function writeFwCfgDisk(path: string, items: FwCfgEntry[]): void {
  writeFileSync(path, fwCfgArchive(items), { mode: 0o600 });
}
