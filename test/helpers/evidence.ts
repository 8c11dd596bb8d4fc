/**
 * Tests write what they have shown into src/catalog/evidence-records.ts when they pass, and `vmstub
 * distros` says it. Call recordEvidence at the end of a test, after its assertions: a test that fails
 * before it records nothing. One record per distribution, test and fixture; a new one replaces the old.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Evidence } from '../../src/catalog/evidence.js';
import type { Arch } from '../../src/util/arch.js';
import { VMSTUB } from './cli.js';

const ROOT = resolve(VMSTUB, '..', '..');
export const RECORDS_FILE = resolve(ROOT, 'src', 'catalog', 'evidence-records.ts');
const HEADER = `// Written by the tests (test/helpers/evidence.ts) when they pass; not by hand. See src/catalog/evidence.ts.
import type { Evidence } from './evidence.js';

export const EVIDENCE_RECORDS: Evidence[] = [`;

/** The records in the file, as written. */
export function readRecords(): Evidence[] {
  const text = readFileSync(RECORDS_FILE, 'utf8');
  const body = text.slice(text.indexOf('= [') + 2, text.lastIndexOf(']') + 1);
  return JSON.parse(body.replace(/,\s*\]$/, ']')) as Evidence[];
}

/** "test/e2e/create.test.ts" for the compiled test's import.meta.url. */
export function testFileOf(url: string): string {
  return relative(ROOT, fileURLToPath(url))
    .replace(/^dist\//, '')
    .replace(/\.js$/, '.ts');
}

/** One record per entry, architecture, test and step reached: a test whose words changed replaces its old record. */
const key = (e: Evidence) => `${e.distro}\0${e.arch}\0${e.test}\0${e.reached}`;

export function recordEvidence(
  testUrl: string,
  shown: (Omit<Evidence, 'test' | 'arch'> & { arch?: Arch })[],
): void {
  const test = testFileOf(testUrl);
  const fresh: Evidence[] = shown.map((e) => ({
    distro: e.distro,
    test,
    source: e.source,
    reached: e.reached,
    arch: e.arch ?? 'x86_64',
    ...(e.what ? { what: e.what } : {}),
  }));
  const replaced = new Set(fresh.map(key));
  const records = [...readRecords().filter((e) => !replaced.has(key(e))), ...fresh].sort((a, b) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0,
  );
  const text = `${HEADER}\n${records.map((r) => `  ${JSON.stringify(r)}`).join(',\n')}\n];\n`;
  if (text === readFileSync(RECORDS_FILE, 'utf8')) return;
  // Whole or not at all: unit tests read it while another writes.
  const tmp = `${RECORDS_FILE}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, RECORDS_FILE);
}
