/**
 * Signatures on real data (test/fixtures/real/): real signed CentOS 7, EPEL 7 and Fedora 31 packages
 * against the distributions' real keys, through the bootstrap's own metadata, download and signature
 * steps with the real rpm; and Gentoo's real clear-signed pointer file against Gentoo's real release
 * key, through the stage3 step's verification with the real gpgv.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchPackages, loadRepo, type RpmBootstrapOptions } from '../../src/bootstrap/rpm/bootstrap.js';
import { checkSignatures, expiryNotices } from '../../src/bootstrap/rpm/signatures.js';
import { parseLatest, pinnedKeyring, verifiedText } from '../../src/bootstrap/gentoo/stage3.js';
import { readKeyFile, type OpenPgpKey } from '../../src/bootstrap/openpgp.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { recordEvidence } from '../helpers/evidence.js';
import { REAL } from '../helpers/cs9.js';
import { RPM_DISTROS } from '../../src/catalog/rpm.js';
import { makeRepo, makeSigningKey, setExpiry, signRpms } from '../helpers/rpm-repo.js';

const RPMS = join(REAL, 'rpms');
const KEYS = join(REAL, 'rpm-gpg-keys');
const PACKAGES = {
  centos7: '389-ds-base-devel-1.3.8.4-15.el7.x86_64.rpm',
  fedora31: 'rpm-sign-4.15.1-1.fc31.x86_64.rpm',
  epel7: 'monkeysphere-0.37-1.el7.noarch.rpm',
  unknownKey: 'freesrp-udev-0.3.0-1.25.x86_64.rpm',
};
const GENTOO_KEY = join(REAL, 'gentoo', 'gentoo-release-key.from-dm0-installer.asc');
const GENTOO_POINTER = join(REAL, 'gentoo', 'latest-stage3-amd64-systemd.txt.from-pleiades');
const GENTOO_FINGERPRINT = '13EBBDBEDE7A12775DFDB1BABB572E0E2D182910';
const GENTOO_SUBKEY = '534E4209AB49EEE1C19D96162C44695DB9F6043D';

const work = mkdtempSync(join(tmpdir(), 'vmstub-sigs-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** An rpm database with these keys imported, as the bootstrap makes one in the target. */
async function database(name: string, keyFiles: string[]): Promise<{ db: string[]; keys: OpenPgpKey[] }> {
  const dir = join(work, 'db', name);
  mkdirSync(dir, { recursive: true });
  const db = ['--dbpath', dir];
  execFileSync('rpm', [...db, '--initdb']);
  const keys: OpenPgpKey[] = [];
  for (const k of keyFiles) {
    execFileSync('rpmkeys', [...db, '--import', k]);
    keys.push(...(await readKeyFile(k)));
  }
  return { db, keys };
}

/** Served on loopback, read through repomd and primary, and every package downloaded and checksummed. */
async function fetchedFrom(repoDir: string, servers: Server[]): Promise<Map<string, string>> {
  const served = await serveDirectory(repoDir, 'os');
  servers.push(served.server);
  const o: RpmBootstrapOptions = {
    repos: [{ id: 'real', baseurl: served.url }],
    arch: 'x86_64',
    packages: [],
    root: '/nonexistent',
    dbpath: '/var/lib/rpm',
    keys: [],
    cacheDir: mkdtempSync(join(work, 'cache-')),
  };
  const meta = await loadRepo(o.repos[0]!, o);
  const files = await fetchPackages(meta.packages, [meta], o);
  return new Map(meta.packages.map((p, i) => [p.href.split('/').pop()!, files[i]!]));
}

describe('real RPM packages and keys', () => {
  const servers: Server[] = [];
  let fetched = new Map<string, string>();
  let tampered = new Map<string, string>();
  const realKeys = ['RPM-GPG-KEY-CentOS-7', 'RPM-GPG-KEY-EPEL-7', 'RPM-GPG-KEY-fedora-31-primary'].map((k) =>
    join(KEYS, k),
  );

  before(async () => {
    fetched = await fetchedFrom(
      makeRepo(
        join(work, 'repo'),
        Object.values(PACKAGES).map((p) => join(RPMS, p)),
      ),
      servers,
    );
    // One byte of monkeysphere's payload flipped, and the repository's metadata made anew around it:
    // its checksum in primary is right, so only the signature can tell.
    const flipped = join(work, PACKAGES.epel7);
    const bytes = readFileSync(join(RPMS, PACKAGES.epel7));
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0x01, bytes.length - 100);
    writeFileSync(flipped, bytes);
    tampered = await fetchedFrom(makeRepo(join(work, 'repo-tampered'), [flipped]), servers);
  });
  after(() => servers.forEach((s) => s.close()));

  const signed = () => [PACKAGES.centos7, PACKAGES.fedora31, PACKAGES.epel7].map((p) => fetched.get(p)!);

  it('verify with their distributions’ real keys', async () => {
    assert.equal(fetched.size, 4, 'every package listed in the regenerated primary');
    const { db, keys } = await database('real', realKeys);
    await checkSignatures(signed(), db, keys);
    // The catalog's centos7 key is the same file (Debian's distribution-gpg-keys) as this one.
    assert.ok(RPM_DISTROS.find((d) => d.id === 'centos7')!.keys.files[0]!.endsWith('/RPM-GPG-KEY-CentOS-7'));
    recordEvidence(import.meta.url, [
      {
        distro: 'centos7',
        source: 'real-metadata',
        reached: 'metadata',
        what: 'a real CentOS 7 package verifies with the key the catalog names, and not with others',
      },
    ]);
  });

  it('are refused with any other key, each naming the key it was signed with', async () => {
    const others = ['RPM-GPG-KEY-Rocky-8', 'RPM-GPG-KEY-AlmaLinux-9', 'RPM-GPG-KEY-CentOS-Official'];
    const { db, keys } = await database(
      'others',
      others.map((k) => join(KEYS, k)),
    );
    await assert.rejects(checkSignatures(signed(), db, keys), (e: Error) => {
      assert.match(e.message, /^signature check failed: /);
      for (const [file, keyId] of [
        [PACKAGES.centos7, 'f4a80eb5'],
        [PACKAGES.fedora31, '3c3359c4'],
        [PACKAGES.epel7, '352c64e5'],
      ])
        assert.ok(
          e.message.includes(`${file} is signed with key ${keyId}, which is not one of the keys given`),
          e.message,
        );
      assert.match(e.message, /\(6D745A60 \(Release Engineering <infrastructure@rockylinux\.org>\)/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });

  it('refuse a package signed by a key nobody gave, among good ones', async () => {
    const { db, keys } = await database('real-plus-unknown', realKeys);
    await assert.rejects(
      checkSignatures([...signed(), fetched.get(PACKAGES.unknownKey)!], db, keys),
      new RegExp(`${PACKAGES.unknownKey.replaceAll('.', '\\.')} is signed with key 29b700a4`),
    );
  });

  it('refuse a package with one byte flipped though its checksum in the metadata matches', async () => {
    const { db, keys } = await database('flipped', realKeys);
    const file = tampered.get(PACKAGES.epel7)!;
    await assert.rejects(
      checkSignatures([file], db, keys),
      /monkeysphere-0\.37-1\.el7\.noarch\.rpm does not match its signature: it changed after it was signed/,
    );
  });

  it('name the key that has expired: CentOS 6’s, on 2021-06-30', async () => {
    const [centos6] = await readKeyFile(join(KEYS, 'RPM-GPG-KEY-CentOS-6'));
    assert.equal(centos6!.fingerprint, 'C1DAC52D1664E8A4386DBA430946FCA2C105B9DE');
    assert.equal(centos6!.expires?.toISOString().slice(0, 10), '2021-06-30');
    const notices = expiryNotices(
      await Promise.all(realKeys.map(readKeyFile)).then((k) => [centos6!, ...k.flat()]),
      new Date('2026-12-01'),
    );
    assert.deepEqual(notices, [
      'the key C105B9DE (CentOS-6 Key (CentOS 6 Official Signing Key) <centos-6-key@centos.org>) expired on 2021-06-30: packages it signed before then still verify, anything it signed later is refused',
    ]);
  });

  it('accept what an expired key signed while valid, and refuse what it signed after', async () => {
    // Real package bytes, signed here by a key made in the past that has since expired.
    const before2021 = makeSigningKey(work, 'expired-2021', { at: '20200101T000000', expires: '2021-01-01' });
    const early = join(work, 'signed-2020.rpm');
    copyFileSync(join(RPMS, PACKAGES.epel7), early);
    signRpms([early], before2021, '20200601T000000');
    const a = await database('expired-early', [before2021.publicKey]);
    await checkSignatures([early], a.db, a.keys);

    // Signed in 2022 by a key whose newest self-signature says it expired in 2021.
    const late = makeSigningKey(work, 'expired-late', { at: '20200101T000000' });
    const lateFile = join(work, 'signed-2022.rpm');
    copyFileSync(join(RPMS, PACKAGES.epel7), lateFile);
    signRpms([lateFile], late, '20220601T000000');
    setExpiry(late, '2021-01-01', '20200601T000000');
    const b = await database('expired-late', [late.publicKey]);
    await assert.rejects(
      checkSignatures([lateFile], b.db, b.keys),
      /signed-2022\.rpm was signed on 2022-06-01 with key [0-9A-F]{8} \(vmstub fixture expired-late .*\), which expired on 2021-01-01/,
    );
  });
});

describe('Gentoo’s real release key and pointer file', () => {
  it('reads the pinned key, its signing subkey and the expiry this export carries', async () => {
    const [key] = await readKeyFile(GENTOO_KEY);
    assert.equal(key!.fingerprint, GENTOO_FINGERPRINT);
    assert.deepEqual(key!.subkeys, [GENTOO_SUBKEY]);
    assert.equal(key!.expires?.toISOString().slice(0, 10), '2023-07-01');
  });

  it('finds the signature made by the pinned key’s subkey, and refuses it naming the key’s expiry', async () => {
    const dir = mkdtempSync(join(work, 'gentoo-'));
    const keyring = await pinnedKeyring(GENTOO_KEY, GENTOO_FINGERPRINT, dir);
    const copy = join(dir, 'latest-stage3-amd64-systemd.txt');
    copyFileSync(GENTOO_POINTER, copy);
    await assert.rejects(
      verifiedText(copy, keyring),
      new RegExp(
        `latest-stage3-amd64-systemd\\.txt: signature check failed: signed by subkey ${GENTOO_SUBKEY} of the pinned key ${GENTOO_FINGERPRINT}, which expired on 2023-07-01 in the key file given: a current copy of the key is needed$`,
      ),
    );
    recordEvidence(import.meta.url, [
      {
        distro: 'gentoo',
        source: 'real-metadata',
        reached: 'metadata',
        what: "its real signed pointer file, found signed by the pinned key's subkey (the real key export we have has expired)",
      },
    ]);
  });

  it('refuses the real file with one line of its signed text changed', async () => {
    const dir = mkdtempSync(join(work, 'gentoo-'));
    const keyring = await pinnedKeyring(GENTOO_KEY, GENTOO_FINGERPRINT, dir);
    const altered = join(dir, 'latest.txt');
    writeFileSync(altered, readFileSync(GENTOO_POINTER, 'utf8').replace(/^(\d{8}T\d{6}Z\/)/m, 'X$1'));
    await assert.rejects(
      verifiedText(altered, keyring),
      /does not match the text: it was changed after signing/,
    );
  });

  /** The real pointer file's signed text, signed anew by key. */
  const resigned = (key: { home: string; fingerprint: string }, dir: string) => {
    // gpg prints the signed text and exits 2: it has no key to check the signature with.
    const text = spawnSync('gpg', ['--batch', '--decrypt', GENTOO_POINTER], {
      env: { ...process.env, GNUPGHOME: mkdtempSync(join(dir, 'empty-')) },
      encoding: 'utf8',
    }).stdout;
    assert.match(text, /^# Latest as of /);
    const file = join(dir, 'latest-stage3-amd64-systemd.txt');
    writeFileSync(
      file,
      execFileSync('gpg', ['--batch', '--quiet', '--local-user', key.fingerprint, '--clearsign'], {
        input: text,
        env: { ...process.env, GNUPGHOME: key.home },
      }),
    );
    return { file, text };
  };

  it('refuses the same text signed by a key outside the pinned key, even when the key file carries both', async () => {
    const dir = mkdtempSync(join(work, 'gentoo-'));
    const intruder = makeSigningKey(dir, 'intruder');
    const both = join(dir, 'keys.asc');
    writeFileSync(both, readFileSync(GENTOO_KEY, 'utf8') + readFileSync(intruder.publicKey, 'utf8'));
    const keyring = await pinnedKeyring(both, GENTOO_FINGERPRINT, dir);
    const { file } = resigned(intruder, dir);
    await assert.rejects(
      verifiedText(file, keyring),
      new RegExp(
        `signed by key ${intruder.fingerprint.slice(-16)}, which is neither the pinned key ${GENTOO_FINGERPRINT} nor one of its subkeys`,
      ),
    );
  });

  it('accepts a signature by the pinned key’s own signing subkey (a key shaped as Gentoo’s, not expired)', async () => {
    const dir = mkdtempSync(join(work, 'gentoo-'));
    const release = makeSigningKey(dir, 'release', { signingSubkey: true });
    const [shape] = await readKeyFile(release.publicKey);
    assert.equal(shape!.subkeys.length, 1, 'a certify-only primary key with one signing subkey');
    const keyring = await pinnedKeyring(release.publicKey, release.fingerprint, dir);
    const { file, text } = resigned(release, dir);
    const verified = await verifiedText(file, keyring);
    assert.equal(verified, text);
    assert.match(
      parseLatest(verified, 'stage3-amd64-systemd'),
      /^20260524T170105Z\/stage3-amd64-systemd-20260524T170105Z\.tar\.xz$/,
    );

    const other = makeSigningKey(dir, 'other', { signingSubkey: true });
    const { file: byOther } = resigned(other, mkdtempSync(join(dir, 'o-')));
    await assert.rejects(verifiedText(byOther, keyring), /which is neither the pinned key/);
  });
});
