import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { VmstubError } from './errors.js';
import { run, which } from './exec.js';

/** Mount points from /proc/self/mountinfo, in the order they were mounted (octal escapes decoded). */
export function parseMountinfo(text: string): string[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[4] ?? '')
    .filter(Boolean)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

/** The mount points at or below dir, innermost (latest) first: the order to unmount them in. */
export function mountsUnderFrom(mountPoints: string[], dir: string): string[] {
  const top = resolve(dir);
  return mountPoints.filter((m) => m === top || m.startsWith(`${top}/`)).reverse();
}

export function mountsUnder(dir: string): string[] {
  const info = existsSync('/proc/self/mountinfo') ? readFileSync('/proc/self/mountinfo', 'utf8') : '';
  return mountsUnderFrom(parseMountinfo(info), dir);
}

/**
 * Unmounts everything at or below dir, innermost first; one that is busy is detached (umount -l),
 * which takes it out of the tree at once. Returns what was unmounted.
 */
export async function unmountUnder(dir: string): Promise<string[]> {
  const done: string[] = [];
  const umount = which('umount') ?? 'umount';
  for (let round = 0; round < 3; round++) {
    const left = mountsUnder(dir);
    if (!left.length) break;
    for (const m of left) {
      const r = await run(umount, [m]);
      if (r.code !== 0) await run(umount, ['-l', m]);
      done.push(m);
    }
  }
  return done;
}

/**
 * Removes a tree that may have things mounted in it (a half-built root filesystem): unmounts first, and
 * refuses to remove anything while a mount is left, so a removal never walks into /dev or /proc.
 */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  await unmountUnder(dir);
  const left = mountsUnder(dir);
  if (left.length)
    throw new VmstubError(`cannot remove ${dir}: ${left[0]} is still mounted (umount it, then try again)`);
  rmSync(dir, { recursive: true, force: true });
}
