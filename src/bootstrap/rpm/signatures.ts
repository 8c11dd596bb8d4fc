/**
 * Every package's signature checked before rpm installs anything, so a refusal names the package and
 * the reason (not rpm's transaction error) and leaves the root as it was. rpm judges the signatures
 * (`rpmkeys -Kv` against the keys imported into the target's database); this module reads its verdict
 * and adds one rule of its own: a signature made after its key expired is refused, as rpm-sequoia
 * (rpm 4.19 and later) refuses it, so the stub's rpm and an older host rpm give the same answer.
 * Packages a key signed while it was valid still verify after it expires (CentOS 6's key, 2021).
 */
import { basename } from 'node:path';
import { run } from '../../util/exec.js';
import { day, describeKey, holdsKeyId, type OpenPgpKey } from '../openpgp.js';

/** One line of `rpmkeys -Kv`: "Header V4 RSA/SHA256 Signature, key ID f8c6301c: OK". */
export interface CheckLine {
  what: string;
  result: string;
  keyId?: string;
}

/** The lines `rpmkeys -Kv` printed for each file, by file path. */
export function parseCheckOutput(out: string): Map<string, CheckLine[]> {
  const files = new Map<string, CheckLine[]>();
  let lines: CheckLine[] | undefined;
  for (const line of out.split('\n')) {
    if (!line.trim()) continue;
    if (!/^\s/.test(line) && line.endsWith(':')) {
      lines = [];
      files.set(line.slice(0, -1), lines);
      continue;
    }
    const m = /^\s+(.*?): (\S+)/.exec(line);
    if (!m || !lines) continue;
    const keyId = /key ID ([0-9a-f]+)/i.exec(m[1]!)?.[1]?.toLowerCase();
    lines.push({ what: m[1]!, result: m[2]!, ...(keyId ? { keyId } : {}) });
  }
  return files;
}

/** Who signed a package and when, from rpm's `%{RSAHEADER:pgpsig}` ("RSA/SHA256, Mon Nov 12 14:21:15 2018, Key ID 24c6a8a7f4a80eb5"). */
export interface SignatureInfo {
  keyId: string;
  created: Date;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** rpm's pgpsig text, printed with TZ=UTC and LC_ALL=C. */
export function parsePgpsig(text: string): SignatureInfo | undefined {
  const m = /, \w{3} (\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\d{4}), Key ID ([0-9a-f]{8,40})/i.exec(text);
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1]!);
  if (month < 0) return undefined;
  const [d, h, mi, s, y] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return { keyId: m[7]!.toLowerCase(), created: new Date(Date.UTC(y, month, d, h, mi, s)) };
}

/** Why one package may not be installed, or undefined when it may. */
export function signatureProblem(
  name: string,
  lines: CheckLine[] | undefined,
  signature: SignatureInfo | undefined,
  keys: OpenPgpKey[],
): string | undefined {
  if (!lines?.length) return `${name} is not a package rpm can read`;
  const signatures = lines.filter((l) => /signature/i.test(l.what) && l.result !== 'NOTFOUND');
  const failed = lines.find((l) => l.result === 'BAD');
  if (failed)
    return `${name} does not match its signature: it changed after it was signed (${failed.what}: BAD)`;
  const untrusted = signatures.find((l) => l.result !== 'OK');
  if (untrusted?.result === 'NOKEY')
    return `${name} is signed with key ${untrusted.keyId ?? '?'}, which is not one of the keys given (${keys.map(describeKey).join(', ') || 'none'})`;
  if (untrusted) return `${name}: rpm does not accept its signature (${untrusted.what}: ${untrusted.result})`;
  if (!signatures.length) return `${name} is not signed`;
  const key = signature && keys.find((k) => holdsKeyId(k, signature.keyId));
  if (key?.expires && signature && signature.created > key.expires)
    return `${name} was signed on ${day(signature.created)} with key ${describeKey(key)}, which expired on ${day(key.expires)}`;
  return undefined;
}

/** Keys that have expired by now, each with a line that tells the user what that means. */
export function expiryNotices(keys: OpenPgpKey[], now: Date): string[] {
  return keys
    .filter((k) => k.expires && k.expires < now)
    .map(
      (k) =>
        `the key ${describeKey(k)} expired on ${day(k.expires!)}: packages it signed before then still verify, anything it signed later is refused`,
    );
}

/** rpm as the bootstrap runs it: Debian's rpm without its warning, messages and dates unlocalised. */
export const RPM_ENV = { ...process.env, RPM_FORCE_DEBIAN: '1', LC_ALL: 'C', TZ: 'UTC' };

/**
 * Every file's signature checked against the keys already imported into root's rpm database; throws
 * one line naming each package refused (the first few, by `names` or the files' own) and why. `env`
 * is added to rpm's environment (the OpenPGP policy, policy.ts).
 */
export async function checkSignatures(
  files: string[],
  db: string[],
  keys: OpenPgpKey[],
  o: { names?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<void> {
  if (!files.length) return;
  const names = o.names ?? files.map((f) => basename(f));
  const env = { ...RPM_ENV, ...o.env };
  const checked = await run('rpmkeys', [...db, '--define', '_pkgverify_level signature', '-Kv', ...files], {
    env,
  });
  const byFile = parseCheckOutput(checked.stdout.toString());
  const queried = await run(
    'rpm',
    [...db, '-qp', '--nomanifest', '--nosignature', '--qf', '%{RSAHEADER:pgpsig}\\n', ...files],
    { env },
  );
  const sigLines = queried.stdout.toString().split('\n');
  const signatureOf = (i: number) => (queried.code === 0 ? parsePgpsig(sigLines[i] ?? '') : undefined);
  const problems = files
    .map((f, i) => signatureProblem(names[i] ?? basename(f), byFile.get(f), signatureOf(i), keys))
    .filter((p): p is string => p !== undefined);
  if (checked.code !== 0 && !problems.length)
    problems.push(`rpmkeys -K failed: ${checked.stderr.trim().split('\n')[0] ?? `exit ${checked.code}`}`);
  if (problems.length) {
    const more = problems.length > 3 ? `; and ${problems.length - 3} more` : '';
    throw new Error(`signature check failed: ${problems.slice(0, 3).join('; ')}${more}`);
  }
}
