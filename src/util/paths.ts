import { homedir } from 'node:os';
import { join } from 'node:path';

/** Whether we run as root; root keeps state in /var/lib and caches in /var/cache. */
export const isRoot = (): boolean => process.getuid?.() === 0;

/** Where instances live: $VMSTUB_HOME, /var/lib/vmstub for root, else the XDG state dir. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VMSTUB_HOME) return env.VMSTUB_HOME;
  if (isRoot()) return '/var/lib/vmstub';
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'vmstub');
}

/** Where derived, re-creatable files live (extracted kernels, probes, image stages). */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VMSTUB_CACHE) return env.VMSTUB_CACHE;
  if (isRoot()) return '/var/cache/vmstub';
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vmstub');
}
