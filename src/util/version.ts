/**
 * rpm's version comparison (rpmvercmp): strings are split into runs of digits and runs of letters,
 * compared run by run (numbers numerically, letters by byte order, a number beats letters); `~` sorts
 * before everything, even the end of the string (1.0~rc1 < 1.0); `^` sorts after the end but before
 * anything else (1.0^git1 > 1.0, < 1.0.1). Kernel versions (6.1.0-56-cloud-amd64,
 * 5.14.0-427.13.1.el9_4.x86_64, 6.12.1-gentoo-dist) order correctly under it.
 */
export function rpmvercmp(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  const isAlnum = (c: string | undefined) => c !== undefined && /[A-Za-z0-9]/.test(c);
  while (i < a.length || j < b.length) {
    while (i < a.length && !isAlnum(a[i]) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j]) && b[j] !== '~' && b[j] !== '^') j++;
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++;
      j++;
      continue;
    }
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++;
      j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = /[0-9]/.test(a[i]!);
    const run = numeric ? /^[0-9]+/ : /^[A-Za-z]+/;
    const ra = run.exec(a.slice(i))?.[0] ?? '';
    const rb = run.exec(b.slice(j))?.[0] ?? '';
    if (!rb) return numeric ? 1 : -1; // a number beats letters; letters lose to a number
    i += ra.length;
    j += rb.length;
    if (numeric) {
      const na = ra.replace(/^0+/, '');
      const nb = rb.replace(/^0+/, '');
      if (na.length !== nb.length) return na.length > nb.length ? 1 : -1;
      if (na !== nb) return na > nb ? 1 : -1;
    } else if (ra !== rb) {
      return ra > rb ? 1 : -1;
    }
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

export interface Evr {
  epoch?: string;
  version: string;
  release?: string;
}

/** rpm's parseEVR: leading digits and ':' are the epoch; the release follows the last '-'. */
export function parseEvr(evr: string): Evr {
  const digits = /^\d*/.exec(evr)![0];
  let epoch: string | undefined;
  let rest = evr;
  if (evr[digits.length] === ':') {
    epoch = digits || '0';
    rest = evr.slice(digits.length + 1);
  }
  // rpm looks for the last '-' from the end of the leading digits, so an epoch-less "1-2" still splits.
  const dash = rest.lastIndexOf('-');
  const searchFrom = epoch === undefined ? digits.length : 0;
  if (dash >= searchFrom && dash >= 0)
    return { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
  return { epoch, version: rest };
}

/**
 * Which of two packages' EVRs is newer, as rpm's rpm.vercmp answers (checked against rpm 4.18 on a
 * generated corpus): epochs (missing is 0), then versions, then releases, where having a release beats
 * having none. (Whether a dependency is satisfied is a different question: a requirement without a
 * release ignores releases.)
 */
export function compareEvr(a: Evr, b: Evr): number {
  const byRelease =
    a.release !== undefined && b.release !== undefined
      ? rpmvercmp(a.release, b.release)
      : a.release !== undefined
        ? 1
        : b.release !== undefined
          ? -1
          : 0;
  return rpmvercmp(a.epoch ?? '0', b.epoch ?? '0') || rpmvercmp(a.version, b.version) || byRelease;
}

export const rpmEvrCompare = (a: string, b: string): number => compareEvr(parseEvr(a), parseEvr(b));
