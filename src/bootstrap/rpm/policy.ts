/**
 * The OpenPGP policy the first pass gives rpm. rpm 4.19 and later verify through rpm-sequoia, whose
 * standard policy has rejected SHA-1 since 2023-02-01, also in the self-signatures that bind a key to
 * its user ID: CentOS 6's and 7's keys and CentOS's original "Official" key are bound so, and the stub's
 * rpm cannot even import them. For those releases only, SHA-1 is accepted where a signature needs
 * second pre-image resistance (self-signatures), never where it needs collision resistance (the
 * signatures on packages and documents). Older rpm (the host's 4.18) does not read the file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** sequoia-policy-config's format (TOML): the standard policy, with SHA-1 accepted for bindings. */
export const SHA1_KEY_BINDINGS_POLICY = '[hash_algorithms]\nsha1.second_preimage_resistance = "always"\n';

/** The environment rpm runs with: the relaxed policy written into dir when asked for, else as it is. */
export function rpmPolicyEnv(sha1KeyBindings: boolean, dir: string): NodeJS.ProcessEnv {
  if (!sha1KeyBindings) return {};
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'rpm-sequoia-sha1-key-bindings.toml');
  writeFileSync(file, SHA1_KEY_BINDINGS_POLICY);
  return { RPM_SEQUOIA_CRYPTO_POLICY: file };
}
