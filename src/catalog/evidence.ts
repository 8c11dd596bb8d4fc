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

/**
 * Against what: the distribution's real mirror; its real published metadata, keys or signed files; a
 * fixture made of real binaries (another distribution's, published as this one publishes); or
 * synthetic packages the test makes.
 */
export type EvidenceSource = 'real-mirror' | 'real-metadata' | 'fixture-binaries' | 'synthetic';

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

const SOURCE_RANK: Record<EvidenceSource, number> = {
  synthetic: 0,
  'real-metadata': 0,
  'fixture-binaries': 1,
  'real-mirror': 2,
};
const rank = (e: Evidence) => REACHED.indexOf(e.reached) * 3 + SOURCE_RANK[e.source];

/** Where the test runs: the slow tier (test/slow/, run before an issue is resolved) or every CI run. */
export const tierOf = (e: Pick<Evidence, 'test'>): 'CI' | 'slow tier' =>
  e.test.startsWith('test/slow/') ? 'slow tier' : 'CI';

/** Every record for the entry, the furthest first. */
export function evidenceFor(distro: string, records: readonly Evidence[] = EVIDENCE_RECORDS): Evidence[] {
  return records
    .filter((e) => e.distro === distro)
    .sort((a, b) => rank(b) - rank(a) || (a.test < b.test ? -1 : 1));
}

const SOURCE: Record<EvidenceSource, string> = {
  'real-mirror': 'real mirror',
  'real-metadata': 'real metadata',
  'fixture-binaries': 'fixture of real binaries',
  synthetic: 'synthetic packages',
};
const REACHED_TEXT: Record<Reached, string> = {
  metadata: 'real data checked',
  bootstrap: 'bootstrap',
  install: 'install',
  'first-boot': 'first boot',
  ssh: 'SSH',
};

/** "SSH, real mirror (x86_64, CI)" for the furthest record; "untested here" when there is none. */
export function verifiedLabel(distro: string, records: readonly Evidence[] = EVIDENCE_RECORDS): string {
  const best = evidenceFor(distro, records)[0];
  if (!best) return 'untested here';
  const where = `${best.arch}, ${tierOf(best)}`;
  if (best.reached === 'metadata') return `${REACHED_TEXT.metadata} (${where})`;
  return `${REACHED_TEXT[best.reached]}, ${SOURCE[best.source]} (${where})`;
}

/**
 * What `vmstub distros` says under INSTALLABLE: "yes" only where a test here installed the entry and
 * logged in over SSH; "not booted here" where tests ran but stopped short; "untested here" where none ran.
 */
export function installableLabel(distro: string, records: readonly Evidence[] = EVIDENCE_RECORDS): string {
  const best = evidenceFor(distro, records)[0];
  if (!best) return 'untested here';
  return best.reached === 'ssh' ? 'yes' : 'not booted here';
}

/** Whether a test here has taken the entry, on this architecture, to an SSH login. */
export const reachedSsh = (
  distro: string,
  arch: Arch,
  records: readonly Evidence[] = EVIDENCE_RECORDS,
): boolean => evidenceFor(distro, records).some((e) => e.arch === arch && e.reached === 'ssh');

/**
 * What no test here runs of an entry's path, because nothing here can stand in for the tool it needs
 * (the fixtures are made of Debian's binaries): said beside the furthest record, in `distros` and docs.
 */
export const NOT_RUN_HERE: Readonly<Record<string, string>> = {
  centos6: 'pass 2 by yum, the first boot under upstart and all after (Debian has neither)',
  centos7: 'pass 2 by yum and all after (Debian has no yum)',
  gentoo: 'emerge-webrsync and emerge, stand-ins in the fixture (Debian has no Portage)',
};

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
  const notRun = NOT_RUN_HERE[d.id] ? `; not run here: ${NOT_RUN_HERE[d.id]}` : '';
  return basicLabel(d, all, verifiedLabel(d.id, records)) + notRun;
}

function basicLabel(d: { family: string }, all: Evidence[], label: string): string {
  const realData = all.some((e) => e.source === 'real-metadata');
  if (realData && all[0]!.reached !== 'metadata') return `${label}; real data checked`;
  if (!realData && (d.family === 'el' || d.family === 'fedora')) return `${label}; no real metadata here`;
  return label;
}
