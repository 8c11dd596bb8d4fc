/** Where vmstub's own files are, and digests of trees (cache keys). */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { VmstubError } from '../util/errors.js';

/** A digest of a directory's files: names, modes and contents. */
export function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      hash.update(`${relative(dir, p)}\0${st.mode}\0`);
      if (st.isDirectory()) walk(p);
      else hash.update(readFileSync(p));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

/** The running bundle (dist/vmstub.cjs) and the guest files shipped next to it. */
export function installationPaths(script = process.argv[1] ?? ''): { bundle: string; guest: string } {
  const bundle = script.endsWith('.cjs')
    ? resolve(script)
    : resolve(dirname(script), '..', '..', 'vmstub.cjs');
  if (!existsSync(bundle)) throw new VmstubError(`the vmstub bundle ${bundle} is missing; run npm run build`);
  const guest = resolve(dirname(bundle), '..', 'guest', 'stub');
  if (!existsSync(join(guest, 'customize.sh')))
    throw new VmstubError(`vmstub's guest files are missing (${guest})`);
  return { bundle, guest };
}
