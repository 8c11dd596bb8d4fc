import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/** The kernel's start time of a process (clock ticks since boot), so a recycled pid is not mistaken for ours. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19]; // field 22 of stat(5), counted after pid and comm
  } catch {
    return undefined;
  }
}

/** Who holds something: a pid and that process's start time. */
export interface Owner {
  pid: number;
  start: string;
}

export const currentOwner = (): Owner => ({ pid: process.pid, start: processStartTicks(process.pid) ?? '' });

export function readOwner(path: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

export const ownerIsLive = (o: Owner | undefined): o is Owner =>
  o !== undefined && processStartTicks(o.pid) === o.start;

/**
 * Takes a lock file for this process: it appears with its content in one step (link of a filled
 * temporary file), so exactly one of two racing callers wins and nobody reads it half written. A lock
 * whose holder is dead is taken over (after onStale, which cleans up what the holder left). Returns the
 * live holder when someone else has it.
 */
export function tryLock(
  path: string,
  onStale: (holder: Owner | undefined) => void = () => {},
): Owner | undefined {
  const tmp = `${path}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify(currentOwner()), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(tmp, path);
        return undefined;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readOwner(path);
      if (ownerIsLive(holder)) return holder;
      onStale(holder);
      rmSync(path, { force: true });
    }
    return { pid: 0, start: '' };
  } finally {
    rmSync(tmp, { force: true });
  }
}

export function releaseLock(path: string): void {
  if (readOwner(path)?.pid === process.pid) rmSync(path, { force: true });
}
