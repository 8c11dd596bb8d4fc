/**
 * The package cache with real clients: apt from Debian's real mirror (through a loopback pass-through
 * the test can take away), and vmstub's own downloads (the RPM bootstrap's and the stage3's). What
 * comes from where, damage found and fetched again, a poisoned cache refused by apt's own checks, the
 * mirror gone, a full disk, and the token.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { download } from '../../src/bootstrap/rpm/fetch.js';
import { startPackageCache, type PackageCacheServer } from '../../src/package-cache/proxy.js';
import { run } from '../../src/util/exec.js';
import { faultyMirror, type FaultyMirror } from '../helpers/fault-proxy.js';
import { isRoot } from '../helpers/fixture.js';
import { waitFor } from '../helpers/cli.js';

const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';
const HELLO = /\/pool\/main\/h\/hello\/hello_[^/]+_amd64\.deb$/;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** An apt of its own under dir: sources, lists and cache there, nothing of the host's configuration. */
function aptIn(dir: string, mirror: string, proxy: string) {
  for (const d of ['etc/parts', 'etc/preferences.d', 'state/lists/partial', 'cache/archives/partial', 'out'])
    mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'etc/sources.list'), `deb [signed-by=${KEYRING}] ${mirror}/debian bookworm main\n`);
  writeFileSync(join(dir, 'status'), '');
  const opts = [
    `Dir::Etc::SourceList=${dir}/etc/sources.list`,
    `Dir::Etc::SourceParts=${dir}/etc/parts`,
    `Dir::Etc::Parts=${dir}/etc/parts`,
    `Dir::Etc::PreferencesParts=${dir}/etc/preferences.d`,
    `Dir::State=${dir}/state`,
    `Dir::State::status=${dir}/status`,
    `Dir::Cache=${dir}/cache`,
    'APT::Architecture=amd64',
    'APT::Sandbox::User=root',
    'Acquire::Languages=none',
    'Acquire::Retries=3',
    'Debug::NoLocking=1',
    `Acquire::http::Proxy=${proxy}`,
  ].flatMap((o) => ['-o', o]);
  return (...args: string[]) => run('apt-get', [...opts, ...args], { cwd: join(dir, 'out') });
}

describe('the package cache (real apt, real mirror)', { skip: !isRoot && 'apt as root' }, () => {
  const work = mkdtempSync(join(tmpdir(), 'vmstub-package-cache-'));
  const notes: string[] = [];
  let mirror: FaultyMirror;
  let cache: PackageCacheServer;
  let apt: ReturnType<typeof aptIn>;
  const fromMirror = (re: RegExp) => mirror.log.filter((s) => re.test(s.path) && s.status === 200).length;
  const cachedHello = () => {
    const dir = join(
      work,
      'cache/files',
      new URL(mirror.url).host.replace(':', '_'),
      'debian/pool/main/h/hello',
    );
    const name = readdirSync(dir).find((f) => f.endsWith('_amd64.deb'))!;
    return {
      file: join(dir, name),
      meta: join(work, 'cache/meta', dir.slice(join(work, 'cache/files').length), `${name}.json`),
    };
  };
  /** Rewrites a kept file and its record to agree: what a mirror that once served wrong bytes leaves. */
  const poison = (file: string, meta: string) => {
    const good = readFileSync(file);
    const evil = Buffer.concat([good.subarray(0, good.length - 4), Buffer.from('evil')]);
    writeFileSync(file, evil);
    const record = JSON.parse(readFileSync(meta, 'utf8')) as object;
    writeFileSync(meta, JSON.stringify({ ...record, sha256: sha256(evil), size: evil.length }));
  };
  const downloadHello = async () => {
    rmSync(join(work, 'apt/out'), { recursive: true, force: true });
    mkdirSync(join(work, 'apt/out'));
    const r = await apt('download', 'hello');
    const got = readdirSync(join(work, 'apt/out'));
    return { ...r, file: got.length ? readFileSync(join(work, 'apt/out', got[0]!)) : undefined };
  };

  before(async () => {
    mirror = await faultyMirror('http://deb.debian.org/', []);
    cache = await startPackageCache({ dir: join(work, 'cache'), note: (l) => notes.push(l) });
    apt = aptIn(join(work, 'apt'), mirror.url, cache.proxyUrl('127.0.0.1'));
  });
  after(async () => {
    await cache.close();
    await mirror.close();
    rmSync(work, { recursive: true, force: true });
  });

  it(
    'serves a package fetched once from the cache, and asks the mirror for its index every time',
    { timeout: 300_000 },
    async () => {
      let r = await apt('update');
      assert.equal(r.code, 0, r.stderr);
      const first = await downloadHello();
      assert.equal(first.code, 0, first.stderr);
      assert.equal(fromMirror(HELLO), 1);

      rmSync(join(work, 'apt/state/lists'), { recursive: true });
      mkdirSync(join(work, 'apt/state/lists/partial'), { recursive: true });
      r = await apt('update');
      assert.equal(r.code, 0, r.stderr);
      const second = await downloadHello();
      assert.equal(second.code, 0, second.stderr);
      assert.equal(fromMirror(HELLO), 1, 'the package came from the cache the second time');
      assert.deepEqual(second.file, first.file);
      assert.equal(fromMirror(/\/dists\/bookworm\/InRelease$/), 2, 'InRelease is fetched afresh each update');
      assert.ok(
        cache.counts.hits >= 2,
        `hits: ${cache.counts.hits} (the package, and the index by its hash)`,
      );
    },
  );

  for (const damage of ['a flipped byte', 'a truncated file'] as const)
    it(`finds ${damage} in a cached package and fetches it again`, { timeout: 120_000 }, async () => {
      const { file } = cachedHello();
      const good = readFileSync(file);
      if (damage === 'a truncated file') truncateSync(file, good.length - 1000);
      else {
        const bad = Buffer.from(good);
        bad[bad.length >> 1]! ^= 0x40;
        writeFileSync(file, bad);
      }
      const before = fromMirror(HELLO);
      const r = await downloadHello();
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.file, good, 'apt got the real package');
      assert.equal(fromMirror(HELLO), before + 1, 'fetched from the mirror again');
      assert.ok(
        notes.some((n) => /hello_.*was damaged/.test(n)),
        notes.join('\n'),
      );
      assert.deepEqual(readFileSync(file), good, 'and kept whole again');
    });

  it(
    "is never trusted over the repository's signed index: a consistently poisoned package is refused by apt",
    { timeout: 120_000 },
    async (t) => {
      const { file, meta } = cachedHello();
      const good = readFileSync(file);
      const record = readFileSync(meta, 'utf8');
      t.after(() => {
        writeFileSync(file, good);
        writeFileSync(meta, record);
      });
      poison(file, meta);
      const damaged = notes.length;
      const r = await downloadHello();
      assert.notEqual(r.code, 0);
      assert.match(r.stderr + r.stdout, /Hash Sum mismatch/);
      assert.equal(notes.length, damaged, 'the cache itself saw nothing wrong');
      assert.deepEqual(
        readdirSync(join(work, 'apt/out')).filter((f) => f.endsWith('.deb')),
        [],
        'apt took no package',
      );
    },
  );

  it(
    "serves vmstub's own downloads (the RPM bootstrap's, the stage3's) through the same cache",
    { timeout: 120_000 },
    async () => {
      const { file } = cachedHello();
      const want = readFileSync(file);
      const url = `${mirror.url}/debian/pool/main/h/hello/${file.split('/').pop()}`;
      const before = { hits: cache.counts.hits, mirror: fromMirror(HELLO) };
      const dest = join(work, 'hello.deb');
      await download(
        url,
        dest,
        { type: 'sha256', value: sha256(want) },
        { proxy: cache.proxyUrl('127.0.0.1') },
      );
      assert.deepEqual(readFileSync(dest), want);
      assert.equal(cache.counts.hits, before.hits + 1);
      assert.equal(fromMirror(HELLO), before.mirror, 'not from the mirror');
    },
  );

  it(
    "asks the mirror afresh when a cached package does not match the repository's checksum, and keeps the mirror's copy",
    { timeout: 120_000 },
    async () => {
      const { file, meta } = cachedHello();
      const good = readFileSync(file);
      poison(file, meta);
      const url = `${mirror.url}/debian/pool/main/h/hello/${file.split('/').pop()}`;
      const before = fromMirror(HELLO);
      const dest = join(work, 'hello-afresh.deb');
      await download(
        url,
        dest,
        { type: 'sha256', value: sha256(good) },
        { proxy: cache.proxyUrl('127.0.0.1') },
      );
      assert.deepEqual(readFileSync(dest), good);
      assert.equal(fromMirror(HELLO), before + 1, 'asked the mirror (Cache-Control: no-cache)');
      // The cache keeps the mirror's copy after its response has ended (the client may already be done),
      // and writes the record last.
      const recorded = () => {
        try {
          return readFileSync(meta, 'utf8').includes(sha256(good));
        } catch {
          return false; // between the old record's removal and the new one's writing
        }
      };
      await waitFor("the mirror's copy recorded", recorded, 10_000);
      assert.deepEqual(readFileSync(file), good, "the mirror's copy replaced the poisoned one");
    },
  );

  it('keeps nothing of what a failed attempt fetched, when asked (a failed install asks)', async () => {
    const dir = join(work, 'cache-failed-attempt');
    const own = await startPackageCache({ dir, note: () => {} });
    try {
      const { file } = cachedHello();
      const url = `${mirror.url}/debian/pool/main/h/hello/${file.split('/').pop()}`;
      await download(url, join(work, 'hello-failed.deb'), undefined, { proxy: own.proxyUrl('127.0.0.1') });
      const kept = file.replace(join(work, 'cache'), dir);
      await waitFor('the download kept', () => existsSync(kept), 10_000);
      assert.equal(own.forgetFetched(), 1);
      assert.equal(existsSync(kept), false);
      assert.equal(own.forgetFetched(), 0, 'once');
    } finally {
      await own.close();
    }
  });

  it("serves only a client with this run's token", async () => {
    const status = (auth?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: cache.port,
            path: `${mirror.url}/debian/dists/bookworm/InRelease`,
            headers: auth ? { 'proxy-authorization': auth } : {},
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    assert.equal(await status(), 407);
    assert.equal(await status(`Basic ${Buffer.from('vmstub:guess').toString('base64')}`), 407);
    const token = new URL(cache.proxyUrl('127.0.0.1')).password;
    assert.equal(await status(`Basic ${Buffer.from(`vmstub:${token}`).toString('base64')}`), 200);
  });

  it('passes https (CONNECT) through as a tunnel, kept nowhere, and only with the token', async () => {
    const echo = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const target = `127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const token = new URL(cache.proxyUrl('127.0.0.1')).password;
    const tunnel = (auth: string, send: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(cache.port, '127.0.0.1', () =>
          socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`),
        );
        let got = '';
        socket.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.endsWith('established\r\n\r\n')) socket.write(send);
          if (got.endsWith(send) || got.startsWith('HTTP/1.1 407')) socket.end();
        });
        socket.on('close', () => resolve(got));
        socket.on('error', reject);
      });
    try {
      const through = await tunnel(
        `Proxy-Authorization: Basic ${Buffer.from(`vmstub:${token}`).toString('base64')}\r\n`,
        'bytes for a TLS server',
      );
      assert.equal(through, 'HTTP/1.1 200 Connection established\r\n\r\nbytes for a TLS server');
      assert.match(await tunnel('', 'never sent'), /^HTTP\/1\.1 407 /);
    } finally {
      echo.close();
    }
  });

  it('keeps downloads going on a full disk, saying so once', { timeout: 120_000 }, async (t) => {
    const small = join(work, 'small');
    mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    t.after(() => execFileSync('umount', [small]));
    const full: string[] = [];
    const tiny = await startPackageCache({ dir: small, note: (l) => full.push(l) });
    try {
      const own = aptIn(join(work, 'apt-full'), mirror.url, tiny.proxyUrl('127.0.0.1'));
      const r = await own('update');
      assert.equal(r.code, 0, r.stderr);
      const lines = full.filter((l) => /is full/.test(l));
      assert.equal(lines.length, 1, full.join('\n'));
      assert.match(lines[0]!, new RegExp(`${small}.*downloads go on but are no longer kept`));
      assert.ok(
        !readdirSync(join(small, 'files'), { recursive: true }).some((f) => String(f).includes('.part-')),
        'no partial files left',
      );
    } finally {
      await tiny.close();
    }
  });

  it(
    'with the mirror gone, serves the indexes as last fetched and the packages it holds, said in a line',
    { timeout: 120_000 },
    async () => {
      await mirror.close();
      const r = await apt('update');
      assert.equal(r.code, 0, r.stderr);
      const got = await downloadHello();
      assert.equal(got.code, 0, got.stderr);
      assert.ok(got.file?.length);
      assert.ok(
        notes.some((n) => /cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED/.test(n)),
        notes.join('\n'),
      );
      assert.ok(cache.counts.stale >= 1, 'InRelease as last fetched');
      assert.ok(existsSync(cachedHello().file));
    },
  );
});
