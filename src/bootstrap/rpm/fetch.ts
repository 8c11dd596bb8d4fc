/**
 * Downloads for the RPM bootstrap: http(s) and file:// URLs, redirects followed, a timeout per
 * request, retries with a growing delay, and the checksum checked while the bytes stream to disk. A
 * file that fails its checksum is deleted and reported; nothing unverified is ever handed on.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { proxyAuthHeader } from '../../util/proxy-auth.js';
import type { Checksum } from './metadata.js';

export interface FetchOptions {
  retries?: number;
  timeoutMs?: number;
  /** For tests: the first retry's delay (it doubles each time). */
  retryDelayMs?: number;
  /** An HTTP proxy for http URLs (vmstub's package cache during an install); https goes direct. */
  proxy?: string;
}

const HASHES: Record<string, string> = {
  sha: 'sha1',
  sha1: 'sha1',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  md5: 'md5',
};

export class ChecksumMismatch extends Error {}

/** A status asking again will not change (404, 403, 410...): the mirror does not have the file. */
class NotOnMirror extends Error {}
const RETRYABLE_4XX = new Set([408, 425, 429]);

export function hashName(c: Checksum): string {
  const h = HASHES[c.type];
  if (!h) throw new Error(`unknown checksum type ${c.type}`);
  return h;
}

interface Opened {
  body: Readable;
  /** The server sent the rest of the file, from the offset asked for (206), not all of it. */
  resumed: boolean;
}

/** The parts of an answer open() reads, from fetch() or from a request through a proxy. */
interface Answer {
  status: number;
  header: (name: string) => string | undefined;
  body: Readable | null;
}

/**
 * A GET through an HTTP proxy (Node's fetch has no proxy support): the whole URL on the request line,
 * the proxy's credentials from its URL, redirects followed through the proxy too.
 */
function viaProxy(
  url: string,
  proxy: string,
  timeoutMs: number,
  headers: Record<string, string>,
  hops = 0,
): Promise<Answer> {
  const p = new URL(proxy);
  const auth = proxyAuthHeader(p);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: p.hostname,
        port: p.port || 80,
        path: url,
        headers: { ...headers, ...auth, host: new URL(url).host },
        timeout: timeoutMs,
      },
      (res) => {
        const status = res.statusCode ?? 502;
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location && hops < 10) {
          res.resume();
          const next = new URL(location, url).href;
          resolve(
            next.startsWith('http:')
              ? viaProxy(next, proxy, timeoutMs, headers, hops + 1)
              : direct(next, timeoutMs, headers),
          );
          return;
        }
        const h = (name: string) => {
          const v = res.headers[name];
          return Array.isArray(v) ? v[0] : v;
        };
        resolve({ status, header: h, body: res });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => reject(new Error('fetch failed', { cause: e })));
    req.end();
  });
}

async function direct(url: string, timeoutMs: number, headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(url, { redirect: 'follow', signal: AbortSignal.timeout(timeoutMs), headers });
  return {
    status: res.status,
    header: (name) => res.headers.get(name) ?? undefined,
    body: res.body ? Readable.fromWeb(res.body as import('node:stream/web').ReadableStream) : null,
  };
}

async function open(
  url: string,
  timeoutMs: number,
  from: number,
  proxy?: string,
  afresh = false,
): Promise<Opened> {
  if (url.startsWith('file:')) return { body: createReadStream(fileURLToPath(url)), resumed: false };
  let res: Answer;
  const headers: Record<string, string> = {
    ...(from > 0 ? { range: `bytes=${from}-` } : {}),
    ...(afresh ? { 'cache-control': 'no-cache' } : {}),
  };
  try {
    res =
      proxy && url.startsWith('http:')
        ? await viaProxy(url, proxy, timeoutMs, headers)
        : await direct(url, timeoutMs, headers);
  } catch (e) {
    // fetch says only "fetch failed"; the reason (refused, reset, timed out, no such host) is its cause.
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    throw new Error(`${url}: ${cause ?? (e as Error).message}`, { cause: e });
  }
  if (res.status >= 400 && res.status < 500 && !RETRYABLE_4XX.has(res.status)) {
    res.body?.resume();
    throw new NotOnMirror(
      `${url}: HTTP ${res.status}${res.status === 404 ? ' (the mirror does not have it)' : ''}`,
    );
  }
  if (!(res.status === 200 || res.status === 206) || !res.body) {
    res.body?.resume();
    throw new Error(`${url}: HTTP ${res.status}`);
  }
  const resumed =
    from > 0 && res.status === 206 && (res.header('content-range') ?? '').startsWith(`bytes ${from}-`);
  return { body: res.body, resumed };
}

const sizeOf = (path: string): number => (existsSync(path) ? statSync(path).size : 0);

/**
 * Fetches url to dest; with a checksum, refuses (and deletes) bytes that do not match it. A download
 * cut off half-way keeps what it got (dest.part) and the next attempt asks only for the rest (an HTTP
 * range), starting from zero where the server does not serve ranges.
 */
export async function download(
  url: string,
  dest: string,
  checksum?: Checksum,
  o: FetchOptions = {},
): Promise<void> {
  const retries = o.retries ?? 4;
  let delay = o.retryDelayMs ?? 1000;
  const tmp = `${dest}.part`;
  rmSync(tmp, { force: true });
  // Through a cache, wrong bytes may be the cache's: asked once more with no-cache, the mirror answers.
  let afresh = false;
  for (let attempt = 0; ; attempt++) {
    try {
      const have = sizeOf(tmp);
      const { body, resumed } = await open(url, o.timeoutMs ?? 120_000, have, o.proxy, afresh);
      const hash = checksum ? createHash(hashName(checksum)) : undefined;
      if (resumed && hash) for await (const chunk of createReadStream(tmp)) hash.update(chunk as Buffer);
      body.on('data', (c: Buffer) => hash?.update(c));
      await pipeline(body, createWriteStream(tmp, { flags: resumed ? 'a' : 'w' }));
      if (checksum && hash) {
        const got = hash.digest('hex');
        if (got !== checksum.value.toLowerCase()) {
          rmSync(tmp, { force: true });
          throw new ChecksumMismatch(
            `${url}: ${checksum.type} is ${got}, the repository says ${checksum.value}`,
          );
        }
      }
      renameSync(tmp, dest);
      return;
    } catch (e) {
      if (e instanceof ChecksumMismatch && o.proxy && !afresh) {
        afresh = true;
        continue;
      }
      // A wrong checksum or a 404 is not a network hiccup: asking again gets the same answer.
      const final = e instanceof ChecksumMismatch || e instanceof NotOnMirror;
      if (final || attempt >= retries || url.startsWith('file:')) {
        rmSync(tmp, { force: true });
        throw e;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

/** The checksum of a file already on disk (a cached download), or undefined when it is missing. */
export async function fileChecksum(path: string, type: string): Promise<string | undefined> {
  if (!existsSync(path)) return undefined;
  const hash = createHash(hashName({ type, value: '' }));
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
