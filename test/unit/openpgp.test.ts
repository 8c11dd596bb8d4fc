/** The pure judgement of gpgv's status lines and of rpm's signature text (the real tools: signatures-real). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { signatureVerdict, type OpenPgpKey } from '../../src/bootstrap/openpgp.js';
import { parsePgpsig, signatureProblem } from '../../src/bootstrap/rpm/signatures.js';

const PINNED: OpenPgpKey = {
  fingerprint: '13EBBDBEDE7A12775DFDB1BABB572E0E2D182910',
  subkeys: ['534E4209AB49EEE1C19D96162C44695DB9F6043D'],
  uid: 'Gentoo Linux Release Engineering',
};

const status = (...lines: string[]) => lines.map((l) => `[GNUPG:] ${l}`).join('\n');

test('a good signature counts only when its primary key is the pinned one', () => {
  const good = (signer: string, primary: string) =>
    status(
      'NEWSIG',
      `GOODSIG ${signer.slice(-16)} someone`,
      `VALIDSIG ${signer} 2026-05-28 1779939664 0 4 0 1 8 01 ${primary}`,
    );
  assert.deepEqual(signatureVerdict(good(PINNED.subkeys[0]!, PINNED.fingerprint), PINNED), { ok: true });
  const stranger = '0123456789ABCDEF0123456789ABCDEF01234567';
  const other = signatureVerdict(good(stranger, stranger), PINNED);
  assert.deepEqual(other, {
    ok: false,
    why: `signed by key ${stranger}, which is neither the pinned key ${PINNED.fingerprint} nor one of its subkeys`,
  });
  assert.deepEqual(signatureVerdict(status('PLAINTEXT 74 0'), PINNED), {
    ok: false,
    why: 'it carries no signature',
  });
});

test('rpm signature text: who signed and when, in UTC', () => {
  assert.deepEqual(parsePgpsig('RSA/SHA256, Mon Nov 12 14:21:15 2018, Key ID 24c6a8a7f4a80eb5'), {
    keyId: '24c6a8a7f4a80eb5',
    created: new Date('2018-11-12T14:21:15Z'),
  });
  assert.equal(parsePgpsig('(none)'), undefined);
});

test('a package with only digests, or none of rpm lines, is refused', () => {
  const digestsOnly = [
    { what: 'Header SHA256 digest', result: 'OK' },
    { what: 'Header DSA signature', result: 'NOTFOUND' },
  ];
  assert.equal(signatureProblem('a.rpm', digestsOnly, undefined, []), 'a.rpm is not signed');
  assert.equal(signatureProblem('b.rpm', [], undefined, []), 'b.rpm is not a package rpm can read');
});
