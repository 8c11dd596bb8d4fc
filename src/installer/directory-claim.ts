import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { unmountUnder } from '../util/mounts.js';
import { stateDir } from '../util/paths.js';
import { currentOwner, ownerIsLive, type Owner } from '../util/pidlock.js';
import { writeFileAtomic } from '../vm/store.js';

/**
 * vmstub installs only into an empty directory, and never deletes files it did not write. A claim,
 * kept in vmstub's state directory while an install into a directory runs (and after it failed), is
 * how a later install into the same directory knows that what it finds there is a killed or failed
 * install's leftovers, which it may clear: the directory was empty when the claim was made.
 */
interface Claim {
  target: string;
  owner: Owner;
}

const claimPath = (target: string): string =>
  join(
    stateDir(),
    'directory-installs',
    createHash('sha256').update(resolve(target)).digest('hex').slice(0, 20) + '.json',
  );

function readClaim(target: string): Claim | undefined {
  try {
    const c = JSON.parse(readFileSync(claimPath(target), 'utf8')) as Claim;
    return c.target === resolve(target) ? c : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Clears an earlier vmstub's unfinished install out of target, when the claim says it is one (and its
 * vmstub is gone). Returns what it did, for the log, or undefined when there was nothing of ours.
 */
export async function clearUnfinished(target: string): Promise<string | undefined> {
  const claim = readClaim(target);
  const pid = claim?.owner.pid;
  if (!claim || ownerIsLive(claim.owner) || !existsSync(target)) return undefined;
  const unmounted = await unmountUnder(target);
  for (const e of readdirSync(target)) rmSync(join(target, e), { recursive: true, force: true });
  return `cleared the unfinished install an earlier vmstub (pid ${pid}) left in ${target}${unmounted.length ? `, unmounting ${unmounted.length} file systems` : ''}`;
}

/** Claims an empty target for this install. */
export function claimDirectory(target: string): void {
  mkdirSync(join(stateDir(), 'directory-installs'), { recursive: true, mode: 0o700 });
  writeFileAtomic(claimPath(target), JSON.stringify({ target: resolve(target), owner: currentOwner() }));
}

/** The install finished: what is in the directory is the user's system now. */
export function releaseDirectory(target: string): void {
  rmSync(claimPath(target), { force: true });
}
