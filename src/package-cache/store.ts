/**
 * The package cache's files on disk: each download under files/ as the mirror names it, with a record
 * under meta/ of its size and sha256, written once the whole file arrived. A copy whose bytes no longer
 * match its record (a flipped bit, a truncated file) is found on use, removed, and fetched again.
 * Whatever the cache holds, the package manager still checks every file against the repository's
 * signed metadata: the record guards against damage, the signature against anyone.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileSha256 } from '../util/digest.js';

export interface Entry {
  /** The file to serve. */
  file: string;
  size: number;
  /** When it was fetched (ISO time). */
  fetched: string;
}

interface Record_ {
  size: number;
  sha256: string;
  url: string;
  fetched: string;
}

/** A download on its way into the cache: written beside its final name, moved there when complete. */
export interface Incoming {
  write(chunk: Buffer): void;
  /** The download ended: keeps it if it is whole (expectedSize, when the server said one). */
  finish(expectedSize?: number): Promise<boolean>;
  abandon(): void;
}

export class PackageStore {
  /** Set once the disk filled: downloads still go to their client, but are no longer kept. */
  private full = false;

  constructor(
    readonly root: string,
    private readonly note: (line: string) => void,
  ) {}

  private paths(rel: string) {
    return { file: join(this.root, 'files', rel), meta: join(this.root, 'meta', `${rel}.json`) };
  }

  /** The verified copy of rel, or undefined; a damaged one is removed (said in a line). */
  async lookup(rel: string): Promise<Entry | undefined> {
    const { file, meta } = this.paths(rel);
    if (!existsSync(meta) || !existsSync(file)) return undefined;
    let record: Record_;
    try {
      record = JSON.parse(readFileSync(meta, 'utf8')) as Record_;
    } catch {
      this.drop(rel, 'its record is unreadable');
      return undefined;
    }
    const size = statSync(file).size;
    if (size !== record.size) {
      this.drop(rel, `${size} bytes where ${record.size} were kept`);
      return undefined;
    }
    if ((await fileSha256(file)) !== record.sha256) {
      this.drop(rel, 'its sha256 differs from the one recorded');
      return undefined;
    }
    return { file, size, fetched: record.fetched };
  }

  /** Removes a kept file and its record. */
  forget(rel: string): void {
    const { file, meta } = this.paths(rel);
    rmSync(meta, { force: true });
    rmSync(file, { force: true });
  }

  private drop(rel: string, why: string): void {
    const { file, meta } = this.paths(rel);
    rmSync(file, { force: true });
    rmSync(meta, { force: true });
    this.note(`package cache: ${rel} was damaged (${why}); fetching it again`);
  }

  /** Starts keeping a download of url as rel; undefined once the cache's disk is full. */
  incoming(rel: string, url: string): Incoming | undefined {
    if (this.full) return undefined;
    const { file, meta } = this.paths(rel);
    const tmp = `${file}.part-${process.pid}-${randomBytes(4).toString('hex')}`;
    const hash = createHash('sha256');
    let size = 0;
    let failed = false;
    const trouble = (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOSPC' || e.code === 'EDQUOT') this.fill();
      else this.note(`package cache: cannot keep ${rel}: ${e.message}`);
    };
    let out: WriteStream;
    try {
      mkdirSync(dirname(file), { recursive: true });
      out = createWriteStream(tmp);
    } catch (e) {
      trouble(e as NodeJS.ErrnoException);
      return undefined;
    }
    /** Gives the download up: nothing of it stays. Whatever happens after is ignored. */
    const discard = () => {
      if (failed) return;
      failed = true;
      out.destroy();
      rmSync(tmp, { force: true });
    };
    const fail = (e: NodeJS.ErrnoException) => {
      if (failed) return;
      discard();
      trouble(e);
    };
    out.on('error', fail);
    return {
      write: (chunk) => {
        if (failed) return;
        hash.update(chunk);
        size += chunk.length;
        out.write(chunk);
      },
      finish: (expectedSize) =>
        new Promise<boolean>((resolve) => {
          if (failed) return resolve(false);
          if (expectedSize !== undefined && size !== expectedSize) {
            discard();
            return resolve(false);
          }
          out.end(() => {
            if (failed) return resolve(false);
            try {
              const record: Record_ = {
                size,
                sha256: hash.digest('hex'),
                url,
                fetched: new Date().toISOString(),
              };
              mkdirSync(dirname(meta), { recursive: true });
              // The record goes last: a file without one is never served.
              rmSync(meta, { force: true });
              renameSync(tmp, file);
              writeFileSync(meta, JSON.stringify(record) + '\n');
              resolve(true);
            } catch (e) {
              fail(e as NodeJS.ErrnoException);
              resolve(false);
            }
          });
        }),
      abandon: discard,
    };
  }

  private fill(): void {
    if (this.full) return;
    this.full = true;
    this.note(
      `package cache: the disk of ${this.root} is full; downloads go on but are no longer kept (free space there, or set VMSTUB_CACHE)`,
    );
  }
}
