import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** A file's sha256, read as a stream (images are hundreds of MiB). */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The sha256 of bytes or text at hand, in hex. */
export const sha256Of = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
