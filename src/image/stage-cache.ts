import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/**
 * Cached build stages, as catalyst and live-build keep them: one directory per stage and key under the
 * cache, filled in a temporary directory and renamed into place only when complete, so an interrupted
 * build never looks finished. Older entries of the same stage are removed once a new one is complete.
 */
export class StageCache {
  constructor(readonly root: string = join(cacheDir(), 'images')) {}

  private path(stage: string, key: string): string {
    return join(this.root, `${stage}-${key}`);
  }

  lookup(stage: string, key: string): string | undefined {
    const dir = this.path(stage, key);
    return existsSync(join(dir, '.complete')) ? dir : undefined;
  }

  /** The newest complete entry of a stage, whatever its key (the offline fallback). */
  newest(stage: string): string | undefined {
    if (!existsSync(this.root)) return undefined;
    const entries = readdirSync(this.root)
      .filter((d) => d.startsWith(`${stage}-`) && existsSync(join(this.root, d, '.complete')))
      .map((d) => join(this.root, d))
      .sort((a, b) => statSync(join(b, '.complete')).mtimeMs - statSync(join(a, '.complete')).mtimeMs);
    return entries[0];
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
    const tmp = join(this.root, `.${stage}-${key}.${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { mode: 0o755 });
    try {
      await fill(tmp);
      writeFileSync(join(tmp, '.complete'), new Date().toISOString() + '\n');
      const dir = this.path(stage, key);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      this.prune(stage, keep);
      return { dir, hit: false };
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  private prune(stage: string, keep: number): void {
    const entries = readdirSync(this.root)
      .filter((d) => d.startsWith(`${stage}-`) && existsSync(join(this.root, d, '.complete')))
      .map((d) => join(this.root, d))
      .sort((a, b) => statSync(join(b, '.complete')).mtimeMs - statSync(join(a, '.complete')).mtimeMs);
    for (const old of entries.slice(keep)) rmSync(old, { recursive: true, force: true });
  }
}
