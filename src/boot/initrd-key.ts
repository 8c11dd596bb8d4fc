/**
 * How the boot handoff passes an encrypted root's passphrase to the system it starts: one more cpio
 * archive after the installed initramfs, for this boot's kernel alone (the kernel unpacks every archive
 * of the initramfs in turn). The installed system's key script reads it (src/installer/render.ts); it
 * lives in the initramfs's memory and is gone when the initramfs hands over to the root.
 */

/** Where the passphrase appears in the initramfs. */
export const HANDOFF_LUKS_KEY = '/vmstub/luks-key';

const pad4 = (n: number) => (4 - (n % 4)) % 4;

/** One entry of a "newc" cpio archive: its header, name and data, each padded to four bytes. */
function newcEntry(ino: number, name: string, mode: number, data: Buffer): Buffer {
  const nameBytes = Buffer.from(`${name}\0`);
  const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
  return Buffer.concat([
    header,
    nameBytes,
    Buffer.alloc(pad4(header.length + nameBytes.length)),
    data,
    Buffer.alloc(pad4(data.length)),
  ]);
}

/** A newc archive of directories and files (paths without a leading slash), with its trailer. */
export function newcArchive(entries: { path: string; mode: number; data?: Buffer }[]): Buffer {
  return Buffer.concat([
    ...entries.map((e, i) => newcEntry(i + 1, e.path, e.mode, e.data ?? Buffer.alloc(0))),
    newcEntry(0, 'TRAILER!!!', 0, Buffer.alloc(0)),
  ]);
}

/** The initramfs followed, at a four-byte boundary, by an archive that holds the passphrase, readable by root alone. */
export function initrdWithKey(initrd: Buffer, passphrase: Buffer): Buffer {
  const [dir, file] = HANDOFF_LUKS_KEY.slice(1).split('/') as [string, string];
  return Buffer.concat([
    initrd,
    Buffer.alloc(pad4(initrd.length)),
    newcArchive([
      { path: dir, mode: 0o40700 },
      { path: `${dir}/${file}`, mode: 0o100400, data: passphrase },
    ]),
  ]);
}
