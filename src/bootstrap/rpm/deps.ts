/**
 * Dependencies as rpm reads them: version ranges (does a provide satisfy a requirement?) and rich
 * (boolean) dependencies such as "(pkgA >= 2 or pkgB)". Pure functions.
 */
import { compareEvr, rpmvercmp } from '../../util/version.js';
import type { Dep, DepFlag } from './metadata.js';

const LESS = 1;
const GREATER = 2;
const EQUAL = 4;
const SENSE: Record<DepFlag, number> = {
  LT: LESS,
  LE: LESS | EQUAL,
  EQ: EQUAL,
  GE: GREATER | EQUAL,
  GT: GREATER,
};

/**
 * Whether a provide (name and range) satisfies a requirement; the names must already match. rpm's
 * rule (rpmdsCompare): epochs, then versions; when those are equal and one side leaves out the
 * release, they match if that side's range includes equality (`a = 1.2` meets `a > 1.2-1`),
 * else the releases are not compared.
 */
export function rangesOverlap(provide: Dep, require: Dep): boolean {
  if (!provide.flags || !require.flags || provide.ver === undefined || require.ver === undefined) return true;
  const a = SENSE[provide.flags];
  const b = SENSE[require.flags];
  let sense = rpmvercmp(provide.epoch || '0', require.epoch || '0') || rpmvercmp(provide.ver, require.ver);
  if (sense === 0) {
    if (provide.rel && require.rel) sense = rpmvercmp(provide.rel, require.rel);
    else if ((provide.rel && b & EQUAL) || (require.rel && a & EQUAL)) return true;
  }
  if (sense < 0) return Boolean(a & GREATER || b & LESS);
  if (sense > 0) return Boolean(a & LESS || b & GREATER);
  return Boolean((a & EQUAL && b & EQUAL) || (a & LESS && b & LESS) || (a & GREATER && b & GREATER));
}

/** A package's own name-version as a provide (rpm adds it to every package). */
export function selfProvide(p: { name: string; epoch: string; ver: string; rel: string }): Dep {
  return { name: p.name, flags: 'EQ', epoch: p.epoch, ver: p.ver, rel: p.rel };
}

export type RichOp = 'and' | 'or' | 'if' | 'unless' | 'with' | 'without';
export type RichDep =
  | { kind: 'simple'; dep: Dep }
  | { kind: 'op'; op: RichOp; args: [RichDep, RichDep, ...RichDep[]]; otherwise?: RichDep };

const OPS = new Set(['and', 'or', 'if', 'unless', 'with', 'without', 'else']);
const CMP: Record<string, DepFlag> = { '=': 'EQ', '==': 'EQ', '<': 'LT', '<=': 'LE', '>': 'GT', '>=': 'GE' };

/**
 * Parentheses and words, as rpm reads them: a word may hold balanced parentheses of its own
 * (`libfoo.so.0()(64bit)`, `python3dist(bar)`); a ')' at its depth 0 ends it and closes a group.
 */
function tokenize(s: string): string[] {
  const toks: string[] = [];
  for (let i = 0; i < s.length;) {
    const c = s[i]!;
    if (/\s/.test(c)) i++;
    else if (c === '(' || c === ')') toks.push(s[i++]!);
    else {
      const start = i;
      for (let depth = 0; i < s.length; i++) {
        const ch = s[i]!;
        if (depth === 0 && (/\s/.test(ch) || ch === ')')) break;
        if (ch === '(') depth++;
        else if (ch === ')') depth--;
      }
      toks.push(s.slice(start, i));
    }
  }
  return toks;
}

/** Parses "(a or (b >= 1.2 and c))" into a tree; throws on text rpm would not accept. */
export function parseRich(text: string): RichDep {
  const toks = tokenize(text);
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`bad rich dependency ${text}: ${why}`);
  };
  const term = (): RichDep => {
    if (toks[i] === '(') {
      i++;
      const e = expr();
      if (toks[i++] !== ')') fail('missing )');
      return e;
    }
    const name = toks[i++];
    if (!name || OPS.has(name) || name === ')') return fail(`expected a name at ${name ?? 'the end'}`);
    const dep: Dep = { name };
    const cmp = CMP[toks[i] ?? ''];
    if (cmp) {
      i++;
      dep.flags = cmp;
      const evr = toks[i++] ?? fail('expected a version');
      const m = /^(?:(\d+):)?([^-]+)(?:-(.+))?$/.exec(evr) ?? fail(`bad version ${evr}`);
      if (m[1] !== undefined) dep.epoch = m[1];
      dep.ver = m[2];
      if (m[3] !== undefined) dep.rel = m[3];
    }
    return { kind: 'simple', dep };
  };
  const expr = (): RichDep => {
    const first = term();
    const op = toks[i];
    if (op === ')' || op === undefined) return first;
    if (!OPS.has(op) || op === 'else') fail(`unknown operator ${op}`);
    i++;
    const args: [RichDep, RichDep, ...RichDep[]] = [first, term()];
    while ((op === 'and' || op === 'or') && toks[i] === op) {
      i++;
      args.push(term());
    }
    const node: RichDep = { kind: 'op', op: op as RichOp, args };
    if ((op === 'if' || op === 'unless') && toks[i] === 'else') {
      i++;
      node.otherwise = term();
    }
    return node;
  };
  if (toks[0] !== '(') fail('must start with (');
  const tree = term();
  if (i !== toks.length) fail('text after the end');
  return tree;
}

export const isRich = (d: Dep): boolean => d.name.startsWith('(');

export function formatDep(d: Dep): string {
  if (!d.flags) return d.name;
  const op = { EQ: '=', LT: '<', LE: '<=', GT: '>', GE: '>=' }[d.flags];
  return `${d.name} ${op} ${d.epoch && d.epoch !== '0' ? `${d.epoch}:` : ''}${d.ver}${d.rel ? `-${d.rel}` : ''}`;
}

/** Newest first, as dnf prefers: epoch, version, release. */
export const newestFirst = (
  a: { epoch: string; ver: string; rel: string },
  b: { epoch: string; ver: string; rel: string },
): number =>
  compareEvr(
    { epoch: b.epoch, version: b.ver, release: b.rel },
    { epoch: a.epoch, version: a.ver, release: a.rel },
  );
