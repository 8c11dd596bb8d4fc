/**
 * What an OpenPGP key file holds, as GnuPG reads it: each key's fingerprint, its subkeys, its user
 * ID and when it expires. Shared by the RPM bootstrap (rpm's keys) and the Gentoo stage3 (the pinned
 * release key), so both can name a key and its expiry instead of failing vaguely.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../util/exec.js';

export interface OpenPgpKey {
  /** The primary key's fingerprint, upper-case hex. */
  fingerprint: string;
  /** Fingerprints of its subkeys, upper-case hex. */
  subkeys: string[];
  uid: string;
  /** When the key (its newest self-signature) says it expires; none when it never does. */
  expires?: Date;
}

/** A time gpg prints as seconds since 1970; none for an empty field. */
const epochDate = (s: string | undefined) => (s && /^\d+$/.test(s) ? new Date(Number(s) * 1000) : undefined);

/** The keys in `gpg --show-keys --with-colons --fixed-list-mode` output. */
export function parseKeyListing(colons: string): OpenPgpKey[] {
  const keys: OpenPgpKey[] = [];
  let current: OpenPgpKey | undefined;
  let last: 'pub' | 'sub' | undefined;
  for (const line of colons.split('\n')) {
    const f = line.split(':');
    switch (f[0]) {
      case 'pub':
        current = { fingerprint: '', subkeys: [], uid: '', expires: epochDate(f[6]) };
        keys.push(current);
        last = 'pub';
        break;
      case 'sub':
        last = 'sub';
        break;
      case 'fpr':
        if (!current) break;
        if (last === 'pub') current.fingerprint = f[9] ?? '';
        else if (last === 'sub') current.subkeys.push(f[9] ?? '');
        last = undefined;
        break;
      case 'uid':
        if (current && !current.uid) current.uid = f[9] ?? '';
        break;
    }
  }
  return keys;
}

/** The keys a file holds, read without importing them anywhere. */
export async function readKeyFile(file: string): Promise<OpenPgpKey[]> {
  const home = mkdtempSync(join(tmpdir(), 'vmstub-gnupg-'));
  try {
    const r = await run(
      'gpg',
      ['--batch', '--no-autostart', '--show-keys', '--with-colons', '--fixed-list-mode', file],
      { env: { ...process.env, GNUPGHOME: home, LC_ALL: 'C' } },
    );
    const keys = r.code === 0 ? parseKeyListing(r.stdout.toString()) : [];
    if (!keys.length) throw new Error(`${file} holds no OpenPGP key`);
    return keys;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** The day, as a person reads it: 2021-06-30. */
export const day = (d: Date) => d.toISOString().slice(0, 10);

/** A key's fingerprint or any of its subkeys' ends with this (long or short) key ID. */
export function holdsKeyId(key: OpenPgpKey, keyId: string): boolean {
  const id = keyId.toUpperCase();
  return [key.fingerprint, ...key.subkeys].some((f) => f.endsWith(id));
}

/** "F4A80EB5 (CentOS-7 Key ...)" */
export const describeKey = (key: OpenPgpKey) => `${key.fingerprint.slice(-8)} (${key.uid || 'no user ID'})`;

/** What gpgv's status lines (`--status-fd`) say of a file's signatures, judged against one pinned key. */
export function signatureVerdict(
  status: string,
  pinned: OpenPgpKey,
): { ok: true } | { ok: false; why: string } {
  const lines = status
    .split('\n')
    .filter((l) => l.startsWith('[GNUPG:] '))
    .map((l) => l.slice(9).split(' '));
  const problems: string[] = [];
  let expiredAt: Date | undefined;
  let state: string | undefined;
  let keyId = '';
  const finish = () => {
    if (state === undefined) return;
    if (state !== 'GOODSIG') problems.push(problemOf(state, keyId, pinned, expiredAt));
    state = undefined;
  };
  for (const [word, ...args] of lines) {
    switch (word) {
      case 'NEWSIG':
        finish();
        state = 'NOSIG';
        keyId = '';
        break;
      case 'KEYEXPIRED':
        expiredAt = epochDate(args[0]);
        break;
      case 'GOODSIG':
      case 'EXPKEYSIG':
      case 'EXPSIG':
      case 'REVKEYSIG':
      case 'BADSIG':
      case 'ERRSIG':
        keyId = args[0] ?? '';
        state = word;
        break;
      case 'VALIDSIG':
        keyId = args[0] ?? keyId;
        // The primary key's fingerprint is the last field: the signer must be the pinned key or its subkey.
        if (state === 'GOODSIG' && args[9] !== pinned.fingerprint) state = 'ERRSIG';
        break;
    }
  }
  finish();
  if (!problems.length && lines.some(([w]) => w === 'GOODSIG')) return { ok: true };
  return { ok: false, why: problems[0] ?? 'it carries no signature' };
}

function problemOf(state: string, keyId: string, pinned: OpenPgpKey, expiredAt: Date | undefined): string {
  const signer = pinned.fingerprint.endsWith(keyId.toUpperCase())
    ? `the pinned key ${pinned.fingerprint}`
    : holdsKeyId(pinned, keyId) && keyId
      ? `subkey ${pinned.subkeys.find((s) => s.endsWith(keyId.toUpperCase()))} of the pinned key ${pinned.fingerprint}`
      : `key ${keyId || '(unknown)'}`;
  switch (state) {
    case 'BADSIG':
      return `the signature by ${signer} does not match the text: it was changed after signing`;
    case 'EXPKEYSIG': {
      const when = expiredAt ?? pinned.expires;
      return `signed by ${signer}, which expired on ${when ? day(when) : 'an unknown date'} in the key file given: a current copy of the key is needed`;
    }
    case 'EXPSIG':
      return `the signature by ${signer} has expired`;
    case 'REVKEYSIG':
      return `signed by ${signer}, which has been revoked`;
    case 'ERRSIG':
      return holdsKeyId(pinned, keyId) && keyId
        ? `the signature by ${signer} cannot be checked`
        : `signed by ${signer}, which is neither the pinned key ${pinned.fingerprint} nor one of its subkeys`;
    default:
      return 'it carries no signature';
  }
}
