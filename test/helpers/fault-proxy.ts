/**
 * A mirror that misbehaves on purpose: a loopback HTTP server in front of a fixture mirror that, for the
 * first N requests matching a pattern, drops the connection after some bytes, stalls, answers 500,
 * sends a truncated body, or flips a byte. Everything else (and every later request) is passed through,
 * with HTTP ranges served, so a client that resumes can be seen doing so. Paths matching `freeze` are
 * fetched once and served the same ever after: a test that builds twice sees one state of a live mirror
 * (Debian's security suite may publish between the two builds).
 */
import { createServer, type Server } from 'node:http';

/** A Debian suite's Release files, which name its state: what `freeze` holds for a test that builds twice. */
export const RELEASE_FILES = /\/(InRelease|Release|Release\.gpg)$/;

export type Fault =
  | { kind: 'drop'; afterBytes: number }
  | { kind: 'stall'; ms: number }
  | { kind: 'status'; code: number }
  | { kind: 'truncate'; bytes: number }
  | { kind: 'corrupt' };

export interface FaultRule {
  match: RegExp;
  fault: Fault;
  /** How many matching requests get the fault; later ones are served (Infinity: all of them). */
  times: number;
}

export interface Served {
  path: string;
  status: number;
  bytes: number;
  range?: string;
  fault?: Fault['kind'];
}

export interface FaultyMirror {
  url: string;
  log: Served[];
  close(): Promise<void>;
}

/** Serves upstream (a base URL on loopback) at a new loopback port, applying the rules. */
export function faultyMirror(
  upstream: string,
  rules: FaultRule[],
  o: { freeze?: RegExp } = {},
): Promise<FaultyMirror> {
  const hits = rules.map(() => 0);
  const frozen = new Map<string, Buffer>();
  const log: Served[] = [];
  const base = new URL(upstream);
  const server: Server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0]!;
      const rel = path.startsWith(base.pathname) ? path.slice(base.pathname.length) : path;
      const ruleIndex = rules.findIndex((r, i) => r.match.test(rel) && hits[i]! < r.times);
      const fault = ruleIndex >= 0 ? rules[ruleIndex]!.fault : undefined;
      if (ruleIndex >= 0) hits[ruleIndex]!++;
      let body = frozen.get(rel);
      if (!body) {
        const up = await fetch(new URL(base.pathname.replace(/\/$/, '') + rel, base));
        if (!up.ok) {
          res.writeHead(up.status).end();
          log.push({ path: rel, status: up.status, bytes: 0 });
          return;
        }
        body = Buffer.from(await up.arrayBuffer());
        if (o.freeze?.test(rel)) frozen.set(rel, body);
      }
      const entry: Served = { path: rel, status: 200, bytes: 0, fault: fault?.kind };
      log.push(entry);
      if (fault?.kind === 'status') {
        entry.status = fault.code;
        res.writeHead(fault.code).end('injected failure\n');
        return;
      }
      if (fault?.kind === 'stall') {
        await new Promise((r) => setTimeout(r, fault.ms));
        res.destroy();
        return;
      }
      if (fault?.kind === 'corrupt' && body.length) {
        body = Buffer.from(body);
        const at = Math.floor(body.length / 2);
        body[at] = body[at]! ^ 0xff;
      }
      const size = body.length;
      let start = 0;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (range && Number(range[1]) < size) {
        start = Number(range[1]);
        entry.status = 206;
        entry.range = req.headers.range;
        res.writeHead(206, {
          'content-length': size - start,
          'content-range': `bytes ${start}-${size - 1}/${size}`,
          'accept-ranges': 'bytes',
        });
      } else res.writeHead(200, { 'content-length': size, 'accept-ranges': 'bytes' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const part = body.subarray(start);
      if (fault?.kind === 'drop' || fault?.kind === 'truncate') {
        const n = Math.min(part.length - 1, fault.kind === 'drop' ? fault.afterBytes : fault.bytes);
        entry.bytes = n;
        // The bytes reach the client first: a reset straight away would make its kernel drop them unread.
        res.write(part.subarray(0, n), () =>
          setTimeout(() => (fault.kind === 'drop' ? res.destroy() : res.socket?.end()), 200),
        );
        return;
      }
      entry.bytes = part.length;
      res.end(part);
    })().catch(() => res.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}${base.pathname.replace(/\/$/, '')}`,
        log,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}
