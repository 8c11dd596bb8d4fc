import { createHash } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
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

/** A stage's inputs, as its key is computed from them: kept beside each entry to say why a later build missed. */
export type StageInputs = Record<string, unknown>;

/** Which inputs differ between two entries of a stage, as `name: old -> new` (or `name changed` for long values). */
export function changedInputs(before: StageInputs, after: StageInputs): string[] {
  const show = (v: unknown) => {
    const text = JSON.stringify(v) ?? 'none';
    return text.length > 60 ? undefined : text;
  };
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    const a = before[k];
    const b = after[k];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (Array.isArray(a) && Array.isArray(b)) {
      const added = b.filter((x) => !a.some((y) => JSON.stringify(y) === JSON.stringify(x)));
      const removed = a.filter((x) => !b.some((y) => JSON.stringify(y) === JSON.stringify(x)));
      const parts = [
        ...added.map((x) => `+${show(x) ?? '...'}`),
        ...removed.map((x) => `-${show(x) ?? '...'}`),
      ];
      out.push(`${k}: ${parts.length ? parts.join(' ') : 'order changed'}`);
      continue;
    }
    const sa = show(a);
    const sb = show(b);
    out.push(sa !== undefined && sb !== undefined ? `${k}: ${sa} -> ${sb}` : `${k} changed`);
  }
  return out;
}

const OWNER_FILE = '.owner';
const INPUTS_FILE = '.inputs.json';
/** Touched on every use: pruning to a size removes what was used least recently. */
const USED_FILE = '.complete';
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

  /** The inputs an entry was built from, when it recorded them. */
  inputsOf(dir: string): StageInputs | undefined {
    try {
      return JSON.parse(readFileSync(join(dir, INPUTS_FILE), 'utf8')) as StageInputs;
    } catch {
      return undefined;
    }
  }

  /**
   * Whether a stage would be taken from the cache, and on a miss what changed against its newest entry
   * (nothing cached yet: an empty list and `first`).
   */
  explain(
    stage: string,
    key: string,
    inputs: StageInputs,
  ): { hit: boolean; first: boolean; changed: string[] } {
    if (this.lookup(stage, key)) return { hit: true, first: false, changed: [] };
    const newest = this.newest(stage);
    const before = newest ? this.inputsOf(newest) : undefined;
    return { hit: false, first: !newest, changed: before ? changedInputs(before, inputs) : [] };
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
    o: { inputs?: StageInputs; rebuild?: boolean } = {},
  ): Promise<StageResult> {
    const found = o.rebuild ? undefined : this.lookup(stage, key);
    if (found) {
      touch(join(found, USED_FILE));
      return { dir: found, hit: true };
    }
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
      const built = o.rebuild ? undefined : this.lookup(stage, key);
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
      if (o.inputs) writeFileSync(join(tmp, INPUTS_FILE), JSON.stringify(o.inputs, null, 2) + '\n');
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

  /**
   * Removes complete entries, least recently used first, until the cache holds at most maxBytes; the
   * entries in `keep` (what the build that just ran uses) stay whatever their size. Returns what went.
   */
  async pruneToSize(maxBytes: number, keep: readonly string[] = []): Promise<string[]> {
    if (!existsSync(this.root)) return [];
    const entries = readdirSync(this.root)
      .map((d) => join(this.root, d))
      .filter((d) => existsSync(join(d, USED_FILE)))
      .map((d) => ({ dir: d, used: statSync(join(d, USED_FILE)).mtimeMs, bytes: treeBytes(d) }))
      .sort((a, b) => a.used - b.used);
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    const removed: string[] = [];
    for (const e of entries) {
      if (total <= maxBytes) break;
      if (keep.includes(e.dir)) continue;
      await removeTree(e.dir);
      total -= e.bytes;
      removed.push(e.dir);
    }
    return removed;
  }
}

function touch(path: string): void {
  const now = new Date();
  try {
    utimesSync(path, now, now);
  } catch {
    // a read-only cache still serves
  }
}

/** Bytes a directory's files take (apparent sizes; hard links counted once). */
function treeBytes(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (!seen.has(`${st.dev}:${st.ino}`)) {
        seen.add(`${st.dev}:${st.ino}`);
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}
