/**
 * Snapshots of a stopped instance's data disk: qcow2 internal snapshots (qemu-img snapshot), so a save
 * costs no copy and no new file, a restore is exact (size included), and the disk stays one file that
 * rm, clone and disk grow handle as before. A raw disk.img that create made is first frozen under a
 * qcow2 overlay, as clone does (src/installer/clone.ts); a raw disk of the user's own (run --data) is
 * not made into something else behind their back: it is refused.
 */
import { chmodSync, existsSync } from 'node:fs';
import { conflictError, usageError } from '../util/errors.js';
import { requireTool, runChecked } from '../util/exec.js';
import type { DiskSpec, VmDefinition } from './definition.js';
import { createOverlay } from './allocate.js';
import { isRunning } from './lifecycle.js';
import { editDefinition, instancePaths } from './store.js';

export interface Snapshot {
  tag: string;
  /** When it was saved, ISO 8601. */
  date: string;
}

const TAG_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** qemu-img takes an all-digit name as a snapshot's ID, so such tags would be ambiguous. */
export function validateTag(tag: string): string {
  if (!TAG_RE.test(tag) || /^\d+$/.test(tag))
    throw usageError(
      `snapshot tag '${tag}': letters, digits, '.', '_' and '-', at most 64, starting with a letter or digit, not all digits`,
    );
  return tag;
}

/** A tag for a save not given one: snap-YYYYMMDD-HHMMSS. */
export const defaultTag = (now = new Date()): string =>
  `snap-${now.toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*$/, '')}`;

interface QemuImgInfo {
  'virtual-size': number;
  snapshots?: { name: string; 'date-sec': number; 'date-nsec': number }[];
}

const qemuImg = () => requireTool('qemu-img', 'qemu-utils');

export async function listSnapshots(disk: DiskSpec): Promise<Snapshot[]> {
  if (disk.format !== 'qcow2') return [];
  const out = await runChecked(qemuImg(), ['info', '-U', '--output=json', '-f', 'qcow2', disk.path]);
  const info = JSON.parse(out.toString('utf8')) as QemuImgInfo;
  return (info.snapshots ?? []).map((s) => ({
    tag: s.name,
    date: new Date(s['date-sec'] * 1000 + Math.floor(s['date-nsec'] / 1e6)).toISOString(),
  }));
}

/** The instance, checked: it exists, is stopped, and has a data disk that is there. */
function stoppedDisk(name: string, def: VmDefinition): DiskSpec {
  if (!def.data) throw conflictError(`${name} has no data disk to snapshot`);
  if (isRunning(instancePaths(name)))
    throw conflictError(`${name} is running; snapshots are of a stopped instance (vmstub stop ${name})`);
  if (!existsSync(def.data.path)) throw conflictError(`${name}'s data disk ${def.data.path} is gone`);
  return def.data;
}

/**
 * The disk made snapshot-able: a qcow2 disk as it is; create's raw disk.img frozen read-only under a
 * fresh qcow2 overlay (the definition then names the overlay).
 */
async function snapshotDisk(name: string, def: VmDefinition): Promise<DiskSpec> {
  const disk = stoppedDisk(name, def);
  if (disk.format === 'qcow2') return disk;
  const paths = instancePaths(name);
  if (disk.path !== paths.createdDisk)
    throw conflictError(
      `${name}'s data disk ${disk.path} is raw and not vmstub's: snapshots need qcow2 (qemu-img convert -O qcow2 it, and run with the copy)`,
    );
  const overlay = paths.overlayDisk;
  // qemu-img create would write over it; a file there that the definition does not name is not ours to lose.
  if (existsSync(overlay))
    throw conflictError(`${overlay} exists but is not ${name}'s disk; move it away to take snapshots`);
  chmodSync(disk.path, 0o400);
  try {
    await createOverlay(overlay, disk.path, 'raw');
  } catch (e) {
    chmodSync(disk.path, 0o600);
    throw e;
  }
  def.data = { path: overlay, format: 'qcow2' };
  return def.data;
}

export async function saveSnapshot(name: string, tag: string): Promise<Snapshot> {
  validateTag(tag);
  return editDefinition(name, async (def) => {
    stoppedDisk(name, def);
    if ((await listSnapshots(def.data!)).some((s) => s.tag === tag))
      throw conflictError(`${name} has a snapshot named ${tag} already`);
    const disk = await snapshotDisk(name, def);
    await runChecked(qemuImg(), ['snapshot', '-q', '-c', tag, disk.path]);
    return (await listSnapshots(disk)).find((s) => s.tag === tag)!;
  });
}

async function requireSnapshot(name: string, disk: DiskSpec, tag: string): Promise<Snapshot[]> {
  const all = await listSnapshots(disk);
  if (!all.some((s) => s.tag === tag))
    throw conflictError(
      `${name} has no snapshot named ${tag}${all.length ? ` (it has ${all.map((s) => s.tag).join(', ')})` : ''}`,
    );
  return all;
}

/**
 * Gives the disk back exactly as it was saved (its size too). What the disk holds now is first kept as a
 * snapshot of its own, whose tag is returned, unless discardCurrent.
 */
export async function restoreSnapshot(
  name: string,
  tag: string,
  discardCurrent: boolean,
): Promise<{ restored: string; kept?: string }> {
  validateTag(tag);
  return editDefinition(name, async (def) => {
    const disk = stoppedDisk(name, def);
    const all = await requireSnapshot(name, disk, tag);
    let kept: string | undefined;
    if (!discardCurrent) {
      const base = `before-${tag}`.slice(0, 56);
      kept = base;
      for (let n = 2; all.some((s) => s.tag === kept); n++) kept = `${base}-${n}`;
      await runChecked(qemuImg(), ['snapshot', '-q', '-c', kept, disk.path]);
    }
    await runChecked(qemuImg(), ['snapshot', '-q', '-a', tag, disk.path]);
    return { restored: tag, kept };
  });
}

export async function removeSnapshot(name: string, tag: string): Promise<void> {
  validateTag(tag);
  await editDefinition(name, async (def) => {
    const disk = stoppedDisk(name, def);
    await requireSnapshot(name, disk, tag);
    await runChecked(qemuImg(), ['snapshot', '-q', '-d', tag, disk.path]);
  });
}
