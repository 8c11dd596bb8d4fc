/**
 * What the tests have shown about each catalog entry: which test, against what (the distribution's
 * real mirror, its real published metadata, or a fixture the test builds), and how far it got. The
 * records are written by the tests themselves when they pass (test/helpers/evidence.ts), never by
 * hand, and a unit test checks that each one names a test that claims it; `vmstub distros` shows the
 * furthest each entry got.
 */
import type { Arch } from '../util/arch.js';
import { EVIDENCE_RECORDS } from './evidence-records.js';

/** How far a test took the entry, in order. */
export const REACHED = ['metadata', 'bootstrap', 'install', 'first-boot', 'ssh'] as const;
export type Reached = (typeof REACHED)[number];

export type EvidenceSource = 'real-mirror' | 'real-metadata' | 'fixture';

export interface Evidence {
  distro: string;
  /** The test file, from the project's root. */
  test: string;
  source: EvidenceSource;
  reached: Reached;
  /** The architecture installed (the tests' machines are x86_64; foreign ones run emulated). */
  arch: Arch;
  /** In the test's own words, when the source needs saying (which fixture). */
  what?: string;
}

const rank = (e: Evidence) => REACHED.indexOf(e.reached) * 2 + (e.source === 'real-mirror' ? 1 : 0);

/** Every record for the entry, the furthest first. */
export function evidenceFor(distro: string, records: readonly Evidence[] = EVIDENCE_RECORDS): Evidence[] {
  return records
    .filter((e) => e.distro === distro)
    .sort((a, b) => rank(b) - rank(a) || (a.test < b.test ? -1 : 1));
}

const SOURCE: Record<EvidenceSource, string> = {
  'real-mirror': 'real mirror',
  'real-metadata': 'real metadata',
  fixture: 'fixture',
};
const REACHED_TEXT: Record<Reached, string> = {
  metadata: 'real data checked',
  bootstrap: 'bootstrap',
  install: 'install',
  'first-boot': 'first boot',
  ssh: 'SSH',
};

/** "SSH, real mirror (x86_64)" for the furthest record; "not verified here" when there is none. */
export function verifiedLabel(distro: string, records: readonly Evidence[] = EVIDENCE_RECORDS): string {
  const best = evidenceFor(distro, records)[0];
  if (!best) return 'not verified here';
  if (best.reached === 'metadata') return `${REACHED_TEXT.metadata} (${best.arch})`;
  return `${REACHED_TEXT[best.reached]}, ${SOURCE[best.source]} (${best.arch})`;
}

/**
 * The furthest record, and whether a test also checked the entry against real published data
 * (metadata, signed packages, signed release files); for the RPM family, whose mirrors nobody here
 * can reach, also when none did.
 */
export function distroLabel(
  d: { id: string; family: string },
  records: readonly Evidence[] = EVIDENCE_RECORDS,
): string {
  const all = evidenceFor(d.id, records);
  const label = verifiedLabel(d.id, records);
  const realData = all.some((e) => e.source === 'real-metadata');
  if (realData && all[0]!.reached !== 'metadata') return `${label}; real data checked`;
  if (!realData && (d.family === 'el' || d.family === 'fedora')) return `${label}; no real metadata here`;
  return label;
}
