/**
 * Metadata files arrive gzip-, xz-, zstd- or bzip2-compressed (or plain); which one is told by the
 * first bytes, not by the name. gzip is Node's own; the others are the xz, zstd and bzip2 programs.
 */
import { spawn } from 'node:child_process';
import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none';

export function compressionOf(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

const PROGRAM: Record<Exclude<Compression, 'gzip' | 'none'>, string> = {
  xz: 'xz',
  zstd: 'zstd',
  bzip2: 'bzip2',
};

/** Feeds the file's decompressed text to onText, chunk by chunk; rejects if the decompressor fails. */
export async function readDecompressed(path: string, onText: (text: string) => void): Promise<void> {
  const fd = openSync(path, 'r');
  const head = Buffer.alloc(8);
  readSync(fd, head, 0, 8, 0);
  closeSync(fd);
  const kind = compressionOf(head);
  const consume = async (stream: Readable) => {
    stream.setEncoding('utf8');
    for await (const chunk of stream) onText(chunk as string);
  };
  if (kind === 'none') return consume(createReadStream(path));
  if (kind === 'gzip') return consume(createReadStream(path).pipe(createGunzip()));
  const program = PROGRAM[kind];
  const child = spawn(program, ['-dc', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new Error(`${program}: ${e.message}`)));
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${program} -d ${path} failed: ${err.trim() || `exit ${code}`}`)),
    );
  });
  await Promise.all([consume(child.stdout), exited]);
}
