/**
 * The Gentoo stage3 step against a fixture mirror on loopback: a stage3 tarball with an xattr, its
 * DIGESTS and the pointer file clear-signed by a test key whose fingerprint is pinned, the way
 * Gentoo's release engineering publishes them. Real gpg, gpgv and tar.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';
import { makeSigningKey, type SigningKey } from '../helpers/rpm-repo.js';

const STAMP = '20261101T161545Z';
const NAME = `stage3-amd64-systemd-${STAMP}.tar.xz`;
const AUTOBUILDS = 'releases/amd64/autobuilds';

function clearsign(text: string, key: SigningKey): string {
  return execFileSync('gpg', ['--batch', '--quiet', '--local-user', key.fingerprint, '--clearsign'], {
    input: text,
    env: { ...process.env, GNUPGHOME: key.home },
  }).toString();
}

const getXattr = (path: string, name: string) =>
  execFileSync(
    '/usr/bin/python3',
    ['-c', `import os,sys; print(os.getxattr(sys.argv[1], sys.argv[2]).decode())`, path, name],
    {
      encoding: 'utf8',
    },
  ).trim();

/** A mirror tree: the pointer file, the tarball, its DIGESTS signed by signer. */
function makeMirror(dir: string, tarball: Buffer, signer: SigningKey): void {
  const builds = join(dir, AUTOBUILDS);
  mkdirSync(join(builds, STAMP), { recursive: true });
  writeFileSync(join(builds, STAMP, NAME), tarball);
  const sha512 = createHash('sha512').update(tarball).digest('hex');
  const blake = createHash('blake2b512').update(tarball).digest('hex');
  writeFileSync(
    join(builds, STAMP, `${NAME}.DIGESTS`),
    clearsign(`# BLAKE2B HASH\n${blake}  ${NAME}\n# SHA512 HASH\n${sha512}  ${NAME}\n`, signer),
  );
  writeFileSync(
    join(builds, 'latest-stage3-amd64-systemd.txt'),
    clearsign(
      `# Latest as of Sun, 01 Nov 2026 16:15:45 +0000\n# ts=1793550945\n${STAMP}/${NAME} ${tarball.length}\n`,
      signer,
    ),
  );
}

describe(
  'vmstub gentoo-stage3 (fixture mirror)',
  { skip: !isRoot && 'needs root (numeric owners, xattrs)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-gentoo-'));
    const sandbox = new Sandbox();
    let releng: SigningKey;
    let other: SigningKey;
    const servers: Server[] = [];
    const urls: Record<string, string> = {};

    before(async () => {
      releng = makeSigningKey(work, 'releng');
      other = makeSigningKey(work, 'other');
      const tree = join(work, 'tree');
      mkdirSync(join(tree, 'etc'), { recursive: true });
      writeFileSync(join(tree, 'etc/os-release'), 'NAME=Gentoo\nID=gentoo\n');
      writeFileSync(join(tree, 'etc/ping-capable'), '');
      execFileSync('/usr/bin/python3', [
        '-c',
        'import os,sys; os.setxattr(sys.argv[1], "user.vmstub", b"kept")',
        join(tree, 'etc/ping-capable'),
      ]);
      const tarball = execFileSync('tar', [
        '--xattrs',
        '--xattrs-include=*',
        '--numeric-owner',
        '-cJf',
        '-',
        '-C',
        tree,
        '.',
      ]);
      // The key file serves both keys, as Gentoo's service-keys.gpg serves several: only the pinned one counts.
      const keys = join(work, 'keys');
      mkdirSync(keys);
      writeFileSync(
        join(keys, 'service-keys.gpg'),
        readFileSync(releng.publicKey, 'utf8') + readFileSync(other.publicKey, 'utf8'),
      );

      makeMirror(join(work, 'good'), tarball, releng);
      cpSync(join(work, 'good'), join(work, 'tampered'), { recursive: true });
      const victim = join(work, 'tampered', AUTOBUILDS, STAMP, NAME);
      const bytes = readFileSync(victim);
      bytes.writeUInt8(bytes.readUInt8(200) ^ 0x01, 200);
      writeFileSync(victim, bytes);
      makeMirror(join(work, 'wrong-signer'), tarball, other);
      for (const name of ['good', 'tampered', 'wrong-signer', 'keys']) {
        const s = await serveDirectory(join(work, name), 'gentoo');
        servers.push(s.server);
        urls[name] = s.url;
      }
    });

    after(() => {
      for (const s of servers) s.close();
      sandbox.cleanup();
      rmSync(work, { recursive: true, force: true });
    });

    const unpack = (mirror: string, root: string, fingerprint = releng.fingerprint) => {
      sandbox.env.VMSTUB_CACHE = mkdtempSync(join(work, 'cache-'));
      mkdirSync(root, { recursive: true });
      return sandbox.runAsync([
        'gentoo-stage3',
        '--arch',
        'x86_64',
        '--mirror',
        mirror,
        '--root',
        root,
        '--key-url',
        `${urls.keys}/service-keys.gpg`,
        '--fingerprint',
        fingerprint,
      ]);
    };

    it('finds the newest stage3, verifies its signed DIGESTS and unpacks it with xattrs', async () => {
      const root = join(work, 'root-good');
      const r = await unpack(urls.good!, root);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readFileSync(join(root, 'etc/os-release'), 'utf8'), 'NAME=Gentoo\nID=gentoo\n');
      assert.equal(getXattr(join(root, 'etc/ping-capable'), 'user.vmstub'), 'kept');
      recordEvidence(import.meta.url, [
        {
          distro: 'gentoo',
          source: 'synthetic',
          reached: 'bootstrap',
          what: 'a stage3 the test makes, signed by a test key',
        },
      ]);
    });

    it('refuses a tarball that differs from the signed SHA512, and unpacks nothing', async () => {
      const root = join(work, 'root-tampered');
      const r = await unpack(urls.tampered!, root);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /vmstub: gentoo-stage3: .*stage3-amd64-systemd-.*\.tar\.xz: sha512 is [0-9a-f]+, the repository says/,
      );
      assert.deepEqual(readdirSync(root), []);
    });

    it('refuses DIGESTS signed by any key but the pinned one', async () => {
      const root = join(work, 'root-wrong');
      const r = await unpack(urls['wrong-signer']!, root);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /signature check failed/);
      assert.deepEqual(readdirSync(root), []);
    });

    it('refuses a key file without the pinned fingerprint', async () => {
      const root = join(work, 'root-nokey');
      const r = await unpack(urls.good!, root, '0'.repeat(40));
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the release key file has no key with fingerprint 0{40}/);
      assert.deepEqual(readdirSync(root), []);
    });
  },
);
