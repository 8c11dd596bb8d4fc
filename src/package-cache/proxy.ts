/**
 * The package cache as the installs see it: an HTTP proxy on loopback, for the length of one create,
 * that apt, dnf, yum, debootstrap's wget and vmstub's RPM bootstrap all speak to (http_proxy). The stub
 * reaches it through QEMU's user network (10.0.2.2 is the host's loopback there), the host's bootstrap
 * at 127.0.0.1. Only a client holding this run's token is served (other users of the machine can
 * connect to loopback too). https requests pass through as tunnels, not kept: the cache cannot read them.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import { basicAuth } from '../util/proxy-auth.js';
import { cachePath, keepingOf } from './policy.js';
import { PackageStore } from './store.js';

export interface CacheCounts {
  /** Served from the cache. */
  hits: number;
  hitBytes: number;
  /** Fetched from the mirror (kept where they may be). */
  fetched: number;
  fetchedBytes: number;
  /** Indexes served as last fetched, because the mirror could not be reached. */
  stale: number;
}

export interface PackageCacheServer {
  port: number;
  /** The proxy's address as a client at host (127.0.0.1 on the host, 10.0.2.2 in a QEMU guest) writes it. */
  proxyUrl(host: string): string;
  counts: CacheCounts;
  /** One line for the user: what was served from where. */
  summary(): string;
  /** Removes what this run fetched from the mirror and kept; returns how many files. */
  forgetFetched(): number;
  close(): Promise<void>;
}

export interface PackageCacheOptions {
  dir: string;
  note: (line: string) => void;
}

/** Where a QEMU guest on the user network finds the host's loopback. */
export const GUEST_HOST = '10.0.2.2';
const USER = 'vmstub';
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);
const UPSTREAM_TIMEOUT_MS = 60_000;

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** Errors that mean the mirror could not be reached at all (not an answer it gave). */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
]);

export async function startPackageCache(o: PackageCacheOptions): Promise<PackageCacheServer> {
  const token = randomBytes(18).toString('base64url');
  const expected = basicAuth(USER, token);
  const store = new PackageStore(o.dir, o.note);
  const counts: CacheCounts = { hits: 0, hitBytes: 0, fetched: 0, fetchedBytes: 0, stale: 0 };
  /** What this run fetched from the mirror and kept. */
  const fetchedNow = new Set<string>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const unreachableSaid = new Set<string>();

  /** A GET or HEAD to the mirror. */
  const ask = (target: URL, method: string, headers: http.OutgoingHttpHeaders) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const req = http.request(
        {
          host: target.hostname,
          port: target.port || 80,
          path: target.pathname + target.search,
          headers: { ...headers, host: target.host },
          method,
          agent,
          timeout: UPSTREAM_TIMEOUT_MS,
        },
        resolve,
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      req.end();
    });

  /**
   * A client that found the cached bytes wrong (a checksum the repository's index does not match) asks
   * again with Cache-Control: no-cache, as HTTP lets it: the mirror answers, and its copy replaces ours.
   */
  const asksAfresh = (req: IncomingMessage): boolean =>
    /\bno-cache\b/i.test(`${req.headers['cache-control'] ?? ''} ${req.headers.pragma ?? ''}`);

  const forwardHeaders = (req: IncomingMessage, conditional: boolean): http.OutgoingHttpHeaders => {
    const out: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) {
      // Identity bodies only: a kept copy is served later without the encoding it came in.
      if (HOP_BY_HOP.has(k) || k === 'host' || k === 'accept-encoding' || v === undefined) continue;
      // A download the cache keeps is fetched whole, whatever part of it the client asked for.
      if (!conditional && (k === 'range' || k.startsWith('if-'))) continue;
      out[k] = v;
    }
    return out;
  };

  const replyHeaders = (res: IncomingMessage): http.OutgoingHttpHeaders => {
    const out: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(res.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
    return out;
  };

  async function serveFile(
    req: IncomingMessage,
    res: ServerResponse,
    entry: { file: string; size: number },
    extra: http.OutgoingHttpHeaders = {},
  ) {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = range ? Number(range[1]) : 0;
    if (range && from >= entry.size) {
      res.writeHead(416, { 'content-range': `bytes */${entry.size}` }).end();
      return;
    }
    const headers: http.OutgoingHttpHeaders = {
      'content-length': entry.size - from,
      'content-type': 'application/octet-stream',
      ...extra,
    };
    if (range) headers['content-range'] = `bytes ${from}-${entry.size - 1}/${entry.size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (req.method === 'HEAD') return void res.end();
    createReadStream(entry.file, { start: from })
      .on('error', () => res.destroy())
      .pipe(res);
  }

  /** Relays the mirror's answer, keeping the bytes when it is a whole file of a kept kind. */
  function relay(up: IncomingMessage, res: ServerResponse, req: IncomingMessage, keep?: string) {
    res.writeHead(up.statusCode ?? 502, replyHeaders(up));
    const incoming =
      keep && up.statusCode === 200 && req.method === 'GET' ? store.incoming(keep, req.url!) : undefined;
    let bytes = 0;
    up.on('data', (c: Buffer) => {
      bytes += c.length;
      incoming?.write(c);
    });
    // pipe: a slow client (the guest's emulated network) holds the mirror back instead of memory filling.
    up.pipe(res);
    up.on('end', () => {
      const length = up.headers['content-length'];
      void incoming?.finish(length === undefined ? undefined : Number(length)).then((kept) => {
        if (kept && keep) fetchedNow.add(keep);
      });
      if (up.statusCode === 200) {
        counts.fetched++;
        counts.fetchedBytes += bytes;
      }
    });
    up.on('error', () => {
      incoming?.abandon();
      res.destroy();
    });
    res.on('close', () => {
      if (!up.complete) {
        incoming?.abandon();
        up.destroy();
      }
    });
  }

  function unreachable(target: URL, e: NodeJS.ErrnoException): string {
    const line = `${target.host}: ${e.code ?? e.message}`;
    if (!unreachableSaid.has(target.host)) {
      unreachableSaid.add(target.host);
      o.note(`package cache: cannot reach ${line}`);
    }
    return line;
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    if (req.headers['proxy-authorization'] !== expected) {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="vmstub package cache"' }).end();
      return;
    }
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('vmstub package cache: a proxy request names the whole URL\n');
      return;
    }
    if ((req.method !== 'GET' && req.method !== 'HEAD') || target.protocol !== 'http:') {
      res.writeHead(405).end('vmstub package cache: GET and HEAD of http URLs only\n');
      return;
    }
    const keeping = keepingOf(target);
    const rel = keeping === 'pass' ? undefined : cachePath(target);
    if (keeping === 'immutable' && rel && !asksAfresh(req)) {
      const entry = await store.lookup(rel);
      if (entry) {
        counts.hits++;
        counts.hitBytes += entry.size;
        return serveFile(req, res, entry);
      }
    }
    let up: IncomingMessage;
    try {
      up = await ask(target, req.method, forwardHeaders(req, keeping !== 'immutable'));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = unreachable(target, err);
      const copy =
        keeping === 'index' && rel && UNREACHABLE.has(err.code ?? '') ? await store.lookup(rel) : undefined;
      if (copy) {
        counts.stale++;
        return serveFile(req, res, copy, {
          warning: `110 vmstub "the mirror cannot be reached; as fetched ${copy.fetched}"`,
        });
      }
      res.writeHead(502).end(`vmstub package cache: ${why}\n`);
      return;
    }
    relay(up, res, req, rel);
  }

  /** https (and anything else a client tunnels): passed through as bytes, with the token checked. */
  function tunnel(req: IncomingMessage, client: net.Socket, head: Buffer) {
    if (req.headers['proxy-authorization'] !== expected) {
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="vmstub package cache"\r\n\r\n',
      );
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    const to = net.connect(Number(port || 443), host ?? '');
    to.on('connect', () => {
      client.write('HTTP/1.1 200 Connection established\r\n\r\n');
      to.write(head);
      to.pipe(client);
      client.pipe(to);
    });
    to.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => to.destroy());
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) res.writeHead(500).end(`vmstub package cache: ${e.message}\n`);
      else res.destroy();
    });
  });
  server.on('connect', tunnel);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    proxyUrl: (host) => `http://${USER}:${token}@${host}:${port}/`,
    counts,
    summary: () =>
      `package cache: ${counts.hits} files from the cache (${mib(counts.hitBytes)}), ${counts.fetched} from the mirror (${mib(counts.fetchedBytes)})` +
      (counts.stale ? `, ${counts.stale} indexes as last fetched` : ''),
    forgetFetched: () => {
      for (const rel of fetchedNow) store.forget(rel);
      const n = fetchedNow.size;
      fetchedNow.clear();
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
