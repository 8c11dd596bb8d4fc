/**
 * Repositories whose metadata is wrong, served on loopback to `vmstub rpm-bootstrap`: a repomd.xml
 * whose checksum for primary lies, a primary.xml that is cut short, one that is not compressed data at
 * all, a package entry without its checksum, a package the metadata lists but the mirror does not
 * have. Each is one line naming what is wrong, exit 1, and nothing written into the root.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { isRoot } from '../helpers/fixture.js';
import {
  buildRpms,
  fixturePackages,
  makeRepo,
  makeSigningKey,
  signRpms,
  type SigningKey,
} from '../helpers/rpm-repo.js';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A copy of the repository whose primary.xml.gz is replaced by these bytes, repomd.xml made to match them. */
function withPrimary(from: string, to: string, bytes: (xml: string) => Buffer): string {
  cpSync(from, to, { recursive: true });
  const repodata = join(to, 'repodata');
  const old = readdirSync(repodata).find((f) => f.endsWith('-primary.xml.gz'))!;
  const data = bytes(gunzipSync(readFileSync(join(repodata, old))).toString('utf8'));
  rmSync(join(repodata, old));
  const name = `${sha256(data)}-primary.xml.gz`;
  writeFileSync(join(repodata, name), data);
  const repomd = join(repodata, 'repomd.xml');
  writeFileSync(
    repomd,
    readFileSync(repomd, 'utf8').replace(/<data type="primary">[\s\S]*?<\/data>/, (block) =>
      block
        .replace(
          /<checksum type="sha256">[0-9a-f]+<\/checksum>/,
          `<checksum type="sha256">${sha256(data)}</checksum>`,
        )
        .replace(/<open-checksum type="sha256">[0-9a-f]+<\/open-checksum>\s*/, '')
        .replace(/href="repodata\/[^"]+"/, `href="repodata/${name}"`)
        .replace(/<size>\d+<\/size>/, `<size>${data.length}</size>`),
    ),
  );
  return to;
}

describe(
  'vmstub rpm-bootstrap against wrong metadata',
  { skip: !isRoot && 'needs root (rpm --root)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-rpm-bad-'));
    const box = new Sandbox();
    const servers: Server[] = [];
    let key: SigningKey;
    let repo = '';

    before(() => {
      key = makeSigningKey(work, 'a');
      const rpms = buildRpms(work, fixturePackages(readFileSync(key.publicKey, 'utf8')));
      signRpms(rpms, key);
      repo = makeRepo(join(work, 'repo'), rpms);
    });
    after(() => {
      for (const s of servers) s.close();
      box.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    /** The bootstrap from this repository directory into a new root: its one vmstub line, and the root. */
    async function bootstrap(dir: string) {
      const served = await serveDirectory(dir, 'os');
      servers.push(served.server);
      const root = mkdtempSync(join(work, 'root-'));
      box.env.VMSTUB_CACHE = mkdtempSync(join(work, 'cache-'));
      const r = await box.runAsync([
        'rpm-bootstrap',
        '--repo',
        served.url,
        '--root',
        root,
        '--key',
        key.publicKey,
        'pkgmgr',
        'shell',
      ]);
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('vmstub:'));
      assert.equal(r.code, 1, r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.deepEqual(readdirSync(root), [], 'nothing written into the root');
      return lines[0]!;
    }

    it('a repomd.xml whose checksum for primary lies', async () => {
      const dir = join(work, 'lying');
      cpSync(repo, dir, { recursive: true });
      const repomd = join(dir, 'repodata', 'repomd.xml');
      const text = readFileSync(repomd, 'utf8');
      writeFileSync(
        repomd,
        text.replace(
          /(<data type="primary">[\s\S]*?<checksum type="sha256">)[0-9a-f]+/,
          `$1${'0'.repeat(64)}`,
        ),
      );
      assert.match(
        await bootstrap(dir),
        /primary\.xml\.gz: sha256 is [0-9a-f]{64}, the repository says 0{64}/,
      );
    });

    it('a primary.xml cut short, its checksum right', async () => {
      const dir = withPrimary(repo, join(work, 'short'), (xml) =>
        gzipSync(xml.slice(0, Math.floor(xml.length / 2))),
      );
      assert.match(await bootstrap(dir), /primary\.xml\.gz: XML document ends early/);
    });

    it('a primary that is not compressed XML at all', async () => {
      const dir = withPrimary(repo, join(work, 'garbage'), () =>
        Buffer.from('this is not a primary.xml\n'.repeat(40)),
      );
      assert.match(
        await bootstrap(dir),
        /primary\.xml\.gz: not primary metadata: it has no <metadata> element/,
      );
    });

    it('a package entry without its checksum', async () => {
      const dir = withPrimary(repo, join(work, 'no-checksum'), (xml) =>
        gzipSync(xml.replace(/(<name>shell<\/name>[\s\S]*?)<checksum [^>]*>[0-9a-f]+<\/checksum>/, '$1')),
      );
      assert.match(await bootstrap(dir), /package shell lacks its version, location or checksum/);
    });

    it('a package the metadata lists and the mirror does not have', async () => {
      const dir = join(work, 'missing-file');
      cpSync(repo, dir, { recursive: true });
      rmSync(join(dir, 'Packages', 'shell-1.36-1.noarch.rpm'));
      mkdirSync(join(dir, 'Packages', 'unrelated'));
      assert.match(await bootstrap(dir), /shell-1\.36-1\.noarch\.rpm.*404/);
    });
  },
);
