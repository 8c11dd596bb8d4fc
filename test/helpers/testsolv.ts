/**
 * A reader of libsolv's testcase format (test/fixtures/real/libsolv/doc/testsolv.txt), as far as its
 * plain-install cases use it: repositories in testtags form (inline or in a file beside the case),
 * the system repository, jobs separated by `nextjob`, each with its expected result. Packages come out
 * as vmstub's own RpmPackage, and libsolv's complex dependency syntax (`A & B`, `A <IF> B`) as rpm's
 * rich syntax, so the cases run through the same parser and resolver as real metadata.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Dep, DepFlag, RpmPackage } from '../../src/bootstrap/rpm/metadata.js';
import { parseEvr } from '../../src/util/version.js';

export interface TestsolvJob {
  /** e.g. ['install', 'name', 'X'] */
  job: string[][];
  flags: string[];
  /** What the result section says, one line each, without the `#>`. */
  result: string[];
  resultKinds: string[];
  /** `evrcmp A B` lines (in caret.t). */
  evrcmp: [string, string][];
}

export interface TestsolvCase {
  repos: Map<string, RpmPackage[]>;
  system?: string;
  features: string[];
  jobs: TestsolvJob[];
  /** Dependency kinds the repositories use: Req, Prv, Con, Obs, Rec, Sug, Sup, Enh. */
  tags: Set<string>;
}

const CMP: Record<string, DepFlag> = { '=': 'EQ', '<': 'LT', '<=': 'LE', '>': 'GT', '>=': 'GE' };
const WORDS: Record<string, string> = {
  '&': 'and',
  '|': 'or',
  '<IF>': 'if',
  '<ELSE>': 'else',
  '<UNLESS>': 'unless',
  '<WITH>': 'with',
  '<WITHOUT>': 'without',
};

/** "B >= 2-2" or "A & (B | C)" as a Dep (complex ones as rpm's rich text, in parentheses). */
export function parseTestsolvDep(text: string): Dep {
  const t = text.trim();
  if (/[&|()]|<[A-Z]+>/.test(t)) {
    const rich = t
      .replace(/\(/g, ' ( ')
      .replace(/\)/g, ' ) ')
      .split(/\s+/)
      .filter(Boolean)
      .map((w) => WORDS[w] ?? w)
      .join(' ')
      .replace(/\( /g, '(')
      .replace(/ \)/g, ')')
      // libsolv nests the else branch with its condition: A <IF> (B <ELSE> C) is rpm's (A if B else C)
      .replace(/\b(if|unless) \(([^()]*) else ([^()]*)\)/g, '$1 $2 else $3');
    return { name: `(${rich})` };
  }
  const [name, op, evr] = t.split(/\s+/);
  if (!op) return { name: name! };
  const e = parseEvr(evr!);
  return {
    name: name!,
    flags: CMP[op]!,
    epoch: e.epoch ?? '0',
    ver: e.version,
    ...(e.release !== undefined ? { rel: e.release } : {}),
  };
}

const KINDS: Record<string, 'provides' | 'requires' | 'conflicts' | 'obsoletes' | undefined> = {
  Prv: 'provides',
  Req: 'requires',
  Con: 'conflicts',
  Obs: 'obsoletes',
};

/** Packages from testtags text (=Pkg: name ver rel arch, then their =Req:, =Prv:, ... lines). */
function readTesttags(text: string, repo: string, tags: Set<string>): RpmPackage[] {
  const packages: RpmPackage[] = [];
  let cur: RpmPackage | undefined;
  for (const line of text.split('\n')) {
    const m = /^=(\w+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, tag, value] = m;
    if (tag === 'Ver') continue;
    if (tag === 'Pkg') {
      const [name, ver, rel, arch] = value!.trim().split(/\s+/);
      cur = {
        name: name!,
        ver: ver!,
        rel: rel ?? '',
        arch: arch ?? 'noarch',
        epoch: '0',
        href: `${name}.rpm`,
        checksum: { type: 'sha256', value: '' },
        size: 0,
        provides: [],
        requires: [],
        conflicts: [],
        obsoletes: [],
        files: [],
        repo,
      };
      packages.push(cur);
      continue;
    }
    tags.add(tag!);
    const kind = KINDS[tag!];
    if (cur && kind) cur[kind].push(parseTestsolvDep(value!));
  }
  return packages;
}

export function readTestsolv(file: string): TestsolvCase {
  const lines = readFileSync(file, 'utf8').split('\n');
  const c: TestsolvCase = { repos: new Map(), features: [], jobs: [], tags: new Set() };
  let job: TestsolvJob = { job: [], flags: [], result: [], resultKinds: [], evrcmp: [] };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const words = line.trim().split(/\s+/);
    const inline = () => {
      const body: string[] = [];
      while (lines[i + 1]?.startsWith('#>')) body.push(lines[++i]!.slice(2));
      return body;
    };
    switch (words[0]) {
      case 'repo': {
        const [, name, , format, source] = words;
        let text = '';
        if (format === 'testtags')
          text =
            source === '<inline>' ? inline().join('\n') : readFileSync(join(dirname(file), source!), 'utf8');
        else if (format !== 'empty') throw new Error(`${file}: repository format ${format} is not read here`);
        c.repos.set(name!, readTesttags(text, name!, c.tags));
        break;
      }
      case 'system':
        c.system = words[3];
        break;
      case 'feature':
        c.features.push(...words.slice(1));
        break;
      case 'job':
        job.job.push(words.slice(1));
        break;
      case 'solverflags':
        job.flags.push(...words.slice(1));
        break;
      case 'evrcmp':
        job.evrcmp.push([words[1]!, words[2]!]);
        break;
      case 'result':
        job.resultKinds = words[1]!.split(',');
        job.result = words[2] === '<inline>' ? inline() : [];
        break;
      case 'nextjob':
        c.jobs.push(job);
        job = { job: [], flags: [], result: [], resultKinds: [], evrcmp: [] };
        break;
    }
  }
  c.jobs.push(job);
  return c;
}

/** "A-1-1.noarch@test" as libsolv prints a package in results. */
export const solvable = (p: RpmPackage) =>
  `${p.name}-${p.epoch !== '0' ? `${p.epoch}:` : ''}${p.ver}-${p.rel}.${p.arch}@${p.repo}`;
