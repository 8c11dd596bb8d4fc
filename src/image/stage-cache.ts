import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onCleanup } from '../util/cleanup.js';
import { removeTree } from '../util/mounts.js';
import {
  currentOwner,
  ownerIsLive,
  processStartTicks,
  readOwner,
  releaseLock,
  tryLock,
} from '../util/pidlock.js';
import { cacheDir } from '../util/paths.js';

/** A stable digest of a key object: property order does not matter, values do. */
export function stageKey(parts: Record<string, unknown>): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v as object)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(parts)))
    .digest('hex')
    .slice(0, 20);
}

export interface StageResult {
  dir: string;
  hit: boolean;
}

const OWNER_FILE = '.owner';
const LOCK_POLL_MS = 1000;

/**
 * Cached build stages, as catalyst and live-build keep them: one directory per stage and key under the
 * cache, filled in a temporary directory and renamed into place only when complete, so an interrupted
 * build never looks finished. Older entries of the same stage are removed once a new one is complete.
 *
 * Builds of one stage and key take a lock (two at once: the second waits, then uses the first's
 * result). A temporary directory whose builder is gone (killed, even by SIGKILL) is unmounted and
 * removed by the next build; an interrupted build removes its own on the way out.
 */
export class StageCache {
  constructor(
    readonly root: string = join(cacheDir(), 'images'),
    private readonly note: (line: string) => void = () => {},
  ) {}

  private path(stage: string, key: string): string {
    return join(this.root, `${stage}-${key}`);
  }

  lookup(stage: string, key: string): string | undefined {
    const dir = this.path(stage, key);
    return existsSync(join(dir, '.complete')) ? dir : undefined;
  }

  /** The newest complete entry of a stage, whatever its key (the offline fallback). */
  newest(stage: string): string | undefined {
    return this.complete(stage)[0];
  }

  private complete(stage: string): string[] {
    if (!existsSync(this.root)) return [];
    return readdirSync(this.root)
      .filter((d) => d.startsWith(`${stage}-`) && existsSync(join(this.root, d, '.complete')))
      .map((d) => join(this.root, d))
      .sort((a, b) => statSync(join(b, '.complete')).mtimeMs - statSync(join(a, '.complete')).mtimeMs);
  }

  /** Half-built directories of builders that are gone: unmounted and removed. Returns their names. */
  async removeStale(): Promise<string[]> {
    if (!existsSync(this.root)) return [];
    const stale = readdirSync(this.root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name.startsWith('.') && !this.builderIsLive(d.name))
      .map((d) => d.name);
    for (const d of stale) await removeTree(join(this.root, d));
    return stale;
  }

  /** A builder writes its owner file just after making its directory: until then, the pid in the name says. */
  private builderIsLive(dir: string): boolean {
    const owner = readOwner(join(this.root, dir, OWNER_FILE));
    if (owner) return ownerIsLive(owner);
    const pid = Number(/\.(\d+)$/.exec(dir)?.[1]);
    return pid > 0 && processStartTicks(pid) !== undefined;
  }

  async build(
    stage: string,
    key: string,
    fill: (dir: string) => Promise<void>,
    keep = 2,
  ): Promise<StageResult> {
    const found = this.lookup(stage, key);
    if (found) return { dir: found, hit: true };
    mkdirSync(this.root, { recursive: true });
    const lock = join(this.root, `.${stage}-${key}.lock`);
    for (let waited = false; ; waited = true) {
      const holder = tryLock(lock);
      if (!holder) break;
      if (!waited) this.note(`${stage}: another vmstub (pid ${holder.pid}) is building it; waiting`);
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
    const locked = onCleanup(`the lock of ${stage}`, () => releaseLock(lock));
    try {
      const built = this.lookup(stage, key);
      if (built) return { dir: built, hit: true };
      for (const d of await this.removeStale()) this.note(`removed ${d}, left by an interrupted build`);
      const tmp = join(this.root, `.${stage}-${key}.${process.pid}`);
      mkdirSync(tmp, { mode: 0o755 });
      writeFileSync(join(tmp, OWNER_FILE), JSON.stringify(currentOwner()));
      const partial = onCleanup(`the unfinished ${stage}`, () => removeTree(tmp));
      try {
        await fill(tmp);
      } catch (e) {
        await partial.undo();
        throw e;
      }
      writeFileSync(join(tmp, '.complete'), new Date().toISOString() + '\n');
      const dir = this.path(stage, key);
      await removeTree(dir);
      renameSync(tmp, dir);
      partial.release();
      await this.prune(stage, keep);
      return { dir, hit: false };
    } finally {
      await locked.undo();
    }
  }

  private async prune(stage: string, keep: number): Promise<void> {
    for (const old of this.complete(stage).slice(keep)) await removeTree(old);
  }
}
