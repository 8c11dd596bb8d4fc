/**
 * `vmstub disk grow`: an instance's data disk made larger, never smaller. A stopped instance's image is
 * grown on the host (allocate.ts); a running one's through QMP block_resize, and then its root
 * filesystem at once through the guest agent. Installed systems also grow their root at every boot
 * (x-systemd.growfs in the fstab vmstub writes), so a disk grown while stopped is used on the next start.
 */
import { existsSync } from 'node:fs';
import { installStatus } from '../installer/install-state.js';
import { conflictError, oneLine, usageError, VmstubError } from '../util/errors.js';
import { formatSize, parseSize } from '../util/size.js';
import { allocateDisk, virtualSize } from './allocate.js';
import type { DiskFormat } from './definition.js';
import { isRunning } from './lifecycle.js';
import { guestExec } from './qga.js';
import { qmpOnce } from './qmp.js';
import { DATA_DRIVE } from './qemu-argv.js';
import { fwCfgSysfsPath } from '../events/protocol.js';
import { DATA_DISK } from '../installer/plan/types.js';
import { instancePaths, loadDefinition } from './store.js';

/** SIZE is the new size (20G), or with a + what to add (+4G). Never less than now. */
export function grownSize(current: number, text: string): number {
  const relative = text.trim().startsWith('+');
  const bytes = parseSize(relative ? text.trim().slice(1) : text);
  const wanted = Math.ceil((relative ? current + bytes : bytes) / 512) * 512;
  if (wanted < current)
    throw usageError(
      `the disk is ${formatSize(current)} already; vmstub never shrinks a disk (asked for ${formatSize(wanted)})`,
    );
  return wanted;
}

interface QueryBlockEntry {
  device: string;
  inserted?: { image?: { 'virtual-size'?: number; format?: string } };
}

/** The data disk's size as the running QEMU sees it. */
export async function liveDiskSize(qmpSocket: string): Promise<number> {
  const blocks = (await qmpOnce(qmpSocket, 'query-block')) as QueryBlockEntry[];
  const size = blocks.find((b) => b.device === DATA_DRIVE)?.inserted?.image?.['virtual-size'];
  if (size === undefined) throw new VmstubError('the running VM has no data disk');
  return size;
}

export async function growLive(qmpSocket: string, bytes: number): Promise<void> {
  await qmpOnce(qmpSocket, 'block_resize', { device: DATA_DRIVE, size: bytes }, 60_000);
}

/**
 * Run in the guest by the agent with the new size: waits until the kernel sees it, checks that / is on
 * the data disk (or in a LUKS container there, which it grows first), and grows it in place: systemd-growfs where there is one (it needs no filesystem tools:
 * ext4, xfs and btrfs through their ioctls), else the filesystem's own tool.
 */
export const GUEST_GROW_SCRIPT = `
set -u
dev=$(readlink -f ${DATA_DISK}) || { echo "no data disk in the guest"; exit 3; }
i=0
while [ "$(blockdev --getsize64 "$dev")" -lt "$1" ]; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "the guest does not see the new size of $dev"; exit 3; }
  sleep 0.1
done
root=$(readlink -f "$(findmnt -n -o SOURCE /)")
if [ "$root" != "$dev" ]; then
  # An encrypted root: its LUKS container on the data disk grows first, with the host's passphrase.
  slaves=$(ls "/sys/class/block/\${root##*/}/slaves" 2>/dev/null)
  name=$(cat "/sys/class/block/\${root##*/}/dm/name" 2>/dev/null)
  [ -n "$name" ] && [ "/dev/$slaves" = "$dev" ] || { echo "the guest's / is not on the data disk"; exit 4; }
  key=${fwCfgSysfsPath('luksPassphrase')}
  [ -r "$key" ] || { echo "the encrypted root grows at its next boot: the host keeps no passphrase to resize its container with now"; exit 6; }
  cryptsetup resize --key-file="$key" "$name" || { echo "cryptsetup resize $name failed"; exit 6; }
fi
for growfs in /usr/lib/systemd/systemd-growfs /lib/systemd/systemd-growfs; do
  [ -x "$growfs" ] && exec "$growfs" /
done
case $(findmnt -n -o FSTYPE /) in
  xfs) exec xfs_growfs / ;;
  ext2|ext3|ext4) exec resize2fs "$dev" ;;
  btrfs) exec btrfs filesystem resize max / ;;
  *) echo "no way to grow $(findmnt -n -o FSTYPE /) here"; exit 5 ;;
esac
`;

/** Grows the guest's root filesystem through the agent; the reason in one line when it could not. */
export async function growGuestRoot(
  qgaSocket: string,
  bytes: number,
): Promise<{ ok: boolean; detail: string }> {
  const r = await guestExec(
    qgaSocket,
    '/bin/sh',
    ['-c', GUEST_GROW_SCRIPT, 'vmstub-grow', String(bytes)],
    120_000,
  );
  const detail = (r.stdout + r.stderr).trim().split('\n').pop() ?? '';
  return { ok: r.exitcode === 0, detail };
}

export interface GrowResult {
  name: string;
  disk: string;
  format: DiskFormat;
  previousBytes: number;
  bytes: number;
  action: 'grown' | 'unchanged';
  /** Grown under the running VM (block_resize), not on the host. */
  live: boolean;
  /** The guest's root: grown now, grows at its next boot, or not vmstub's to grow (no installed system). */
  filesystem: 'grown' | 'next-boot' | 'not-installed';
  /** Why the root was not grown at once, when it was not. */
  detail?: string;
}

export async function growInstanceDisk(name: string, sizeText: string): Promise<GrowResult> {
  const def = loadDefinition(name);
  const paths = instancePaths(name);
  if (!def.data) throw conflictError(`${name} has no data disk to grow`);
  if (!existsSync(def.data.path)) throw conflictError(`${name}'s data disk ${def.data.path} is gone`);
  const running = isRunning(paths);
  const previousBytes = running
    ? await liveDiskSize(paths.qmp)
    : await virtualSize(def.data.path, def.data.format);
  const bytes = grownSize(previousBytes, sizeText);
  const installed = installStatus(paths)?.phase === 'installed';
  const base = { name, disk: def.data.path, format: def.data.format, previousBytes, bytes, live: running };
  if (bytes === previousBytes)
    return { ...base, action: 'unchanged', filesystem: installed ? 'next-boot' : 'not-installed' };
  if (!running) {
    await allocateDisk(def.data.path, bytes, def.data.format);
    return { ...base, action: 'grown', filesystem: installed ? 'next-boot' : 'not-installed' };
  }
  await growLive(paths.qmp, bytes);
  if (!installed) return { ...base, action: 'grown', filesystem: 'not-installed' };
  try {
    const fs = await growGuestRoot(paths.qga, bytes);
    return fs.ok
      ? { ...base, action: 'grown', filesystem: 'grown' }
      : { ...base, action: 'grown', filesystem: 'next-boot', detail: fs.detail };
  } catch (e) {
    return { ...base, action: 'grown', filesystem: 'next-boot', detail: oneLine(e) };
  }
}
