/**
 * Gentoo's stage3, verified: the release pointer file names the newest stage3; its DIGESTS file is
 * clear-signed by Gentoo Release Engineering, whose key is fetched and must carry the pinned
 * fingerprint; only the signed text is read, and the tarball must match its SHA512 there before tar
 * unpacks it (xattrs and numeric owners kept).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { run } from '../../util/exec.js';
import { download, fileChecksum, type FetchOptions } from '../rpm/fetch.js';
import { readKeyFile, signatureVerdict, type OpenPgpKey } from '../openpgp.js';

/**
 * The key that signs the stage3: Gentoo's, fetched and pinned by its fingerprint, or a keyring file the
 * user brings for another mirror (which must hold exactly one key, the one pinned).
 */
export type ReleaseKey = { url: string; fingerprint: string } | { file: string };

export interface Stage3Options {
  mirror: string;
  /** e.g. releases/amd64/autobuilds */
  dir: string;
  /** e.g. stage3-amd64-systemd */
  flavour: string;
  releaseKey: ReleaseKey;
  root: string;
  cacheDir: string;
  fetch?: FetchOptions;
  log?: (line: string) => void;
}

/** The stage3's path (relative to the autobuilds directory) from latest-FLAVOUR.txt's text. */
export function parseLatest(text: string, flavour: string): string {
  for (const line of text.split('\n')) {
    const path = line.trim().split(/\s+/)[0] ?? '';
    if (
      path &&
      !path.startsWith('#') &&
      !path.startsWith('-') &&
      basename(path).startsWith(`${flavour}-`) &&
      /\.tar\.(xz|bz2|gz|zst)$/.test(path)
    )
      return path;
  }
  throw new Error(`latest-${flavour}.txt names no ${flavour} tarball`);
}

/** The SHA512 the (signed) DIGESTS text gives for a file. */
export function sha512From(digests: string, file: string): string {
  let inSha512 = false;
  for (const line of digests.split('\n')) {
    const t = line.trim();
    if (t.startsWith('#')) {
      inSha512 = /SHA512/i.test(t);
      continue;
    }
    const [hash, name] = t.split(/\s+/);
    if (inSha512 && hash && name && /^[0-9a-f]{128}$/i.test(hash) && basename(name) === file)
      return hash.toLowerCase();
  }
  throw new Error(`the DIGESTS give no SHA512 for ${file}`);
}

const gpgEnv = (home: string) => ({ ...process.env, GNUPGHOME: home, LC_ALL: 'C' });
/** gpg for public keys only: the stub has no gpg-agent, and without --no-autostart gpg fails starting one. */
const GPG_PUBLIC = ['--batch', '--no-autostart'];

export interface PinnedKeyring {
  /** A keyring file with the pinned key (and its subkeys) alone. */
  path: string;
  key: OpenPgpKey;
}

/** A keyring with only the key of that fingerprint, from whatever the key URL served. */
export async function pinnedKeyring(
  keyFile: string,
  fingerprint: string,
  workDir: string,
): Promise<PinnedKeyring> {
  const home = mkdtempSync(join(workDir, 'gnupg-'));
  const want = fingerprint.replace(/\s+/g, '').toUpperCase();
  const imported = await run('gpg', [...GPG_PUBLIC, '--quiet', '--import', keyFile], { env: gpgEnv(home) });
  if (imported.code !== 0)
    throw new Error(`the release key file is not an OpenPGP key: ${imported.stderr.trim().split('\n')[0]}`);
  const key = (await readKeyFile(keyFile)).find((k) => k.fingerprint === want);
  if (!key) throw new Error(`the release key file has no key with fingerprint ${want}`);
  const exported = await run('gpg', [...GPG_PUBLIC, '--export', want], { env: gpgEnv(home) });
  const keyring = join(workDir, 'release-key.gpg');
  writeFileSync(keyring, exported.stdout);
  rmSync(home, { recursive: true, force: true });
  return { path: keyring, key };
}

/**
 * The signed text of a clear-signed file, or an error saying why its signature is not good enough: it
 * must verify through the pinned key or one of its own subkeys, and that key must not have expired
 * or been revoked (gpgv alone accepts a signature by an expired key, and exits 0).
 */
export async function verifiedText(file: string, keyring: PinnedKeyring): Promise<string> {
  const out = `${file}.verified`;
  rmSync(out, { force: true });
  const r = await run('gpgv', ['--status-fd', '1', '--keyring', keyring.path, '--output', out, file], {
    env: { ...process.env, LC_ALL: 'C' },
  });
  const verdict = signatureVerdict(r.stdout.toString(), keyring.key);
  if (!verdict.ok || r.code !== 0) {
    rmSync(out, { force: true });
    const why = verdict.ok
      ? r.stderr
          .trim()
          .split('\n')
          .pop()
          ?.replace(/^gpgv: /, '')
      : verdict.why;
    throw new Error(`${basename(file)}: signature check failed: ${why ?? `gpgv exit ${r.code}`}`);
  }
  return readFileSync(out, 'utf8');
}

async function releaseKeyring(key: ReleaseKey, work: string, o: Stage3Options): Promise<PinnedKeyring> {
  if ('file' in key) {
    const keys = await readKeyFile(key.file);
    if (keys.length !== 1)
      throw new Error(
        `the keyring ${key.file} holds ${keys.length} keys; give one with only the key that signs the stage3`,
      );
    return pinnedKeyring(key.file, keys[0]!.fingerprint, work);
  }
  o.log?.(`fetch ${key.url}`);
  const keyFile = join(work, 'keys.gpg');
  await download(key.url, keyFile, undefined, o.fetch);
  return pinnedKeyring(keyFile, key.fingerprint, work);
}

export async function installStage3(o: Stage3Options): Promise<{ tarball: string }> {
  const base = `${o.mirror.replace(/\/+$/, '')}/${o.dir.replace(/^\/+|\/+$/g, '')}`;
  mkdirSync(o.cacheDir, { recursive: true });
  const work = mkdtempSync(join(o.cacheDir, 'verify-'));
  try {
    const keyring = await releaseKeyring(o.releaseKey, work, o);

    const latestFile = join(work, `latest-${o.flavour}.txt`);
    o.log?.(`fetch ${base}/latest-${o.flavour}.txt`);
    await download(`${base}/latest-${o.flavour}.txt`, latestFile, undefined, o.fetch);
    // The pointer file is clear-signed too; when it is not, the signed DIGESTS still guard the tarball.
    const latest = readFileSync(latestFile, 'utf8');
    const rel = parseLatest(
      latest.includes('BEGIN PGP SIGNED MESSAGE') ? await verifiedText(latestFile, keyring) : latest,
      o.flavour,
    );
    const name = basename(rel);

    const digestsFile = join(work, `${name}.DIGESTS`);
    o.log?.(`fetch ${base}/${rel}.DIGESTS`);
    await download(`${base}/${rel}.DIGESTS`, digestsFile, undefined, o.fetch);
    const sha512 = sha512From(await verifiedText(digestsFile, keyring), name);

    const tarball = join(o.cacheDir, name);
    if ((await fileChecksum(tarball, 'sha512')) !== sha512) {
      o.log?.(`fetch ${base}/${rel}`);
      await download(`${base}/${rel}`, tarball, { type: 'sha512', value: sha512 }, o.fetch);
    }
    o.log?.(`unpack ${name}`);
    const tar = await run('tar', [
      '-x',
      '-p',
      '-f',
      tarball,
      '--xattrs',
      '--xattrs-include=*.*',
      '--numeric-owner',
      '-C',
      o.root,
    ]);
    if (tar.code !== 0) throw new Error(`tar could not unpack ${name}: ${tar.stderr.trim().split('\n')[0]}`);
    return { tarball };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
