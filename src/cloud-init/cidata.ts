/**
 * A cloud-init NoCloud seed on a disk of its own, for images that run cloud-init themselves (a cloud
 * image booted with run --boot-disk): an ISO 9660 filesystem labelled cidata holding user-data,
 * meta-data and vendor-data, with Rock Ridge and Joliet names (cloud-init reads the files by their
 * long names). Owner-only: its vendor-data holds the system's SSH host keys.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { VmstubError } from '../util/errors.js';
import { requireTool, run } from '../util/exec.js';

export const CIDATA_LABEL = 'cidata';

/**
 * Vendor-data (cloud-init merges it under the user-data, which wins) with SSH host keys vmstub made
 * and records, so the first login checks the host strictly, as for an instance create made.
 */
export function cidataVendorData(hostKeys: Record<string, string>): string {
  const sshKeys: Record<string, string> = {};
  for (const [file, content] of Object.entries(hostKeys)) {
    const m = /^ssh_host_(\w+)_key(\.pub)?$/.exec(file);
    if (m) sshKeys[`${m[1]}_${m[2] ? 'public' : 'private'}`] = m[2] ? content.trim() : content;
  }
  return '#cloud-config\n' + stringify({ ssh_keys: sshKeys });
}

export interface CidataFiles {
  userData: string;
  metaData: string;
  vendorData: string;
}

const FILES = { userData: 'user-data', metaData: 'meta-data', vendorData: 'vendor-data' } as const;

/** Writes the seed ISO to `out` with xorriso, readable by its owner only. */
export async function writeCidataIso(out: string, files: CidataFiles): Promise<void> {
  const xorriso = requireTool('xorriso', 'xorriso');
  const dir = mkdtempSync(join(tmpdir(), 'vmstub-cidata-'));
  try {
    for (const [k, name] of Object.entries(FILES))
      writeFileSync(join(dir, name), files[k as keyof CidataFiles]);
    writeFileSync(out, '', { mode: 0o600 });
    chmodSync(out, 0o600);
    const r = await run(xorriso, [
      ...['-as', 'mkisofs', '-quiet', '-output', out, '-volid', CIDATA_LABEL, '-joliet', '-rock'],
      ...Object.values(FILES).map((name) => join(dir, name)),
    ]);
    if (r.code !== 0)
      throw new VmstubError(`xorriso could not make the cidata seed: ${r.stderr.trim().split('\n').pop()}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
