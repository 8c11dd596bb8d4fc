/**
 * Which packages a bootstrap installs: the closure of the requested names over Requires, honouring
 * version ranges and rich dependencies, newest version per name, deterministic choices among several
 * providers. A worklist, not a SAT solver: it is meant for the small first pass (the release package
 * and the package manager), after which the target's own dnf/yum (libsolv) installs the system; and rpm
 * checks the result again before installing anything.
 */
import {
  formatDep,
  isRich,
  newestFirst,
  parseRich,
  rangesOverlap,
  selfProvide,
  type RichDep,
} from './deps.js';
import { nevra, type Dep, type RpmPackage } from './metadata.js';

export interface Resolution {
  /** In the order they were chosen; rpm orders the transaction itself. */
  packages: RpmPackage[];
  /** Why each package (by NEVRA) is in: "requested", or "P needs X". */
  reasons: Map<string, string>;
}

/** A file dependency nobody in primary.xml provides: look in filelists.xml, then resolve again. */
export class MissingFiles extends Error {
  constructor(readonly paths: string[]) {
    super(`no package in primary.xml provides ${paths.join(', ')}`);
  }
}

interface Provider {
  pkg: RpmPackage;
  dep: Dep;
}

export class Resolver {
  private readonly byName = new Map<string, RpmPackage[]>();
  private readonly providers = new Map<string, Provider[]>();
  /** Packages by the names they obsolete. */
  private readonly obsoleters = new Map<string, RpmPackage[]>();

  constructor(packages: RpmPackage[]) {
    for (const p of packages) {
      for (const o of p.obsoletes)
        if (o.name !== p.name) this.obsoleters.set(o.name, [...(this.obsoleters.get(o.name) ?? []), p]);
      const list = this.byName.get(p.name) ?? [];
      list.push(p);
      this.byName.set(p.name, list);
      this.addProvide(p, selfProvide(p));
      for (const d of p.provides) this.addProvide(p, d);
      for (const f of p.files) this.addProvide(p, { name: f });
    }
    for (const list of this.byName.values()) list.sort(newestFirst);
  }

  /** Files found in filelists.xml for packages (matched by checksum, as filelists' pkgid). */
  addFiles(byChecksum: Map<string, string[]>): void {
    for (const list of this.byName.values())
      for (const p of list)
        for (const f of byChecksum.get(p.checksum.value) ?? []) this.addProvide(p, { name: f });
  }

  private addProvide(pkg: RpmPackage, dep: Dep): void {
    const list = this.providers.get(dep.name) ?? [];
    list.push({ pkg, dep });
    this.providers.set(dep.name, list);
  }

  resolve(requested: string[], exclude: ReadonlySet<string> = new Set()): Resolution {
    return new Closure(this.byName, this.providers, this.obsoleters, exclude).run(requested);
  }
}

/** A version that is a hash (libsolv ignores those when it compares what packages have in common). */
const isHash = (v: string | undefined) => v !== undefined && v.length >= 4 && /^[0-9a-f]+$/.test(v);

/**
 * For each package, how many others provide a capability it provides at a higher version: what
 * libsolv's sort_by_common_dep counts to put java-17 before java-11 when both provide java-headless.
 */
function commonDepBadness(pkgs: RpmPackage[]): Map<RpmPackage, number> {
  const badness = new Map(pkgs.map((p) => [p, 0]));
  if (pkgs.length < 2) return badness;
  const byCap = new Map<string, { pkg: RpmPackage; dep: Dep }[]>();
  for (const pkg of pkgs)
    for (const dep of pkg.provides)
      if (
        (dep.flags === 'EQ' || dep.flags === 'LE' || dep.flags === 'LT') &&
        dep.ver !== undefined &&
        !isHash(dep.ver)
      ) {
        const list = byCap.get(dep.name) ?? [];
        list.push({ pkg, dep });
        byCap.set(dep.name, list);
      }
  const evr = (d: Dep) => ({ epoch: d.epoch ?? '0', ver: d.ver ?? '', rel: d.rel ?? '' });
  // Higher versions first; at the same version, "< v" after "= v" and "<= v".
  const order = (a: Dep, b: Dep) =>
    newestFirst(evr(a), evr(b)) || Number(a.flags === 'LT') - Number(b.flags === 'LT');
  for (const list of byCap.values()) {
    if (list.length < 2) continue;
    list.sort((a, b) => order(a.dep, b.dep));
    let bad = 0;
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.pkg !== list[i - 1]!.pkg && order(list[i - 1]!.dep, list[i]!.dep) < 0) bad++;
      badness.set(list[i]!.pkg, badness.get(list[i]!.pkg)! + bad);
    }
  }
  return badness;
}

class Closure {
  private readonly selected = new Map<string, RpmPackage>();
  private readonly order: RpmPackage[] = [];
  private readonly reasons = new Map<string, string>();
  private readonly queue: RpmPackage[] = [];
  private readonly conditionals: { pkg: RpmPackage; rich: RichDep }[] = [];
  private readonly missingFiles = new Set<string>();

  constructor(
    private readonly byName: Map<string, RpmPackage[]>,
    private readonly providers: Map<string, Provider[]>,
    private readonly obsoleters: Map<string, RpmPackage[]>,
    private readonly exclude: ReadonlySet<string>,
  ) {}

  run(requested: string[]): Resolution {
    for (const name of requested) {
      const dep: Dep = { name };
      if (this.satisfied(dep)) continue;
      const byName = this.byName.get(name)?.filter((p) => !this.obsoleted(p));
      const pick = (byName?.[0] && this.replacement(byName[0])) ?? byName?.[0] ?? this.best(dep);
      if (!pick) throw new Error(`no package named ${name} in the repositories`);
      this.select(pick, 'requested');
    }
    for (;;) {
      while (this.queue.length) this.expand(this.queue.shift()!);
      if (this.missingFiles.size) throw new MissingFiles([...this.missingFiles].sort());
      if (!this.settleConditionals(false) && !this.settleConditionals(true)) break;
    }
    this.checkConflicts();
    return { packages: this.order, reasons: this.reasons };
  }

  private select(p: RpmPackage, why: string): void {
    const have = this.selected.get(p.name);
    if (have) {
      if (have !== p) throw new Error(`${why}: needs ${nevra(p)}, but ${nevra(have)} is already chosen`);
      return;
    }
    this.selected.set(p.name, p);
    this.order.push(p);
    this.reasons.set(nevra(p), why);
    this.queue.push(p);
  }

  private expand(p: RpmPackage): void {
    for (const req of p.requires) {
      if (req.name.startsWith('rpmlib(') || this.exclude.has(req.name)) continue;
      const by = `${p.name} needs ${formatDep(req)}`;
      if (isRich(req)) this.requireRich(p, parseRich(req.name), by);
      // Every range the package puts on this name at once ("foo >= 2" and "foo < 3" mean 2.x).
      else
        this.require(
          req,
          by,
          p.requires.filter((r) => r.name === req.name && r !== req),
        );
    }
  }

  /** Providers of a capability in the range, chosen packages first, never a second version of a name. */
  private candidates(dep: Dep): RpmPackage[] {
    const seen = new Set<RpmPackage>();
    for (const { pkg, dep: prov } of this.providers.get(dep.name) ?? []) {
      if (!rangesOverlap(prov, dep)) continue;
      const chosen = this.selected.get(pkg.name);
      if (chosen && chosen !== pkg) continue;
      if (!chosen && this.obsoleted(pkg)) continue;
      seen.add(pkg);
    }
    return [...seen];
  }

  private satisfied(dep: Dep): boolean {
    return this.candidates(dep).some((p) => this.selected.get(p.name) === p);
  }

  /**
   * The provider to choose, as libsolv's policy orders them: the newest version of each name; the
   * package named as the capability first; then, among packages that provide a capability of the same
   * name at different versions (java-headless = 1:11 and = 1:17), the higher version (libsolv's
   * sort_by_common_dep); then the newest version of its name before an older one that alone provides
   * it (libsolv's dislike_old_versions); then the shortest name, then by name.
   */
  private best(dep: Dep, alsoInRange: Dep[] = []): RpmPackage | undefined {
    const all = this.candidates(dep);
    const ranges = alsoInRange.map((r) => new Set(this.candidates(r)));
    const inAll = all.filter((p) => ranges.every((inRange) => inRange.has(p)));
    const newest = new Map<string, RpmPackage>();
    for (const p of inAll.length ? inAll : all) {
      const have = newest.get(p.name);
      if (!have || newestFirst(p, have) < 0) newest.set(p.name, p);
    }
    const c = [...newest.values()];
    const badness = commonDepBadness(c);
    const old = (p: RpmPackage) => Number(this.byName.get(p.name)?.[0] !== p);
    c.sort(
      (a, b) =>
        Number(b.name === dep.name) - Number(a.name === dep.name) ||
        badness.get(a)! - badness.get(b)! ||
        old(a) - old(b) ||
        a.name.length - b.name.length ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
    return c[0];
  }

  private require(dep: Dep, by: string, alsoInRange: Dep[] = []): void {
    if (this.satisfied(dep)) return;
    const pick = this.best(dep, alsoInRange);
    if (pick) return this.select(pick, by);
    if (dep.name.startsWith('/')) {
      this.missingFiles.add(dep.name);
      return;
    }
    const who = by.replace(/ needs .*/, '');
    // Provided, but only by another version of a name already chosen: say so, not "nothing provides".
    const blocked = (this.providers.get(dep.name) ?? []).find(
      ({ pkg, dep: prov }) => rangesOverlap(prov, dep) && this.selected.has(pkg.name),
    );
    if (blocked)
      throw new Error(
        `${who} needs ${formatDep(dep)}, which ${nevra(blocked.pkg)} provides, but ${nevra(this.selected.get(blocked.pkg.name)!)} is already chosen`,
      );
    throw new Error(`nothing provides ${formatDep(dep)} (${who} needs it)`);
  }

  private holds(r: RichDep): boolean {
    if (r.kind === 'simple') return this.satisfied(r.dep);
    const [a, b] = r.args;
    switch (r.op) {
      case 'and':
        return r.args.every((x) => this.holds(x));
      case 'or':
        return r.args.some((x) => this.holds(x));
      case 'if':
        return this.holds(b) ? this.holds(a) : r.otherwise ? this.holds(r.otherwise) : true;
      case 'unless':
        return this.holds(b) ? (r.otherwise ? this.holds(r.otherwise) : true) : this.holds(a);
      case 'with':
      case 'without':
        return this.chosenFor(r).length > 0;
    }
  }

  /** Chosen packages that satisfy "A with B" (one package both) or "A without B". */
  private chosenFor(r: RichDep & { kind: 'op' }): RpmPackage[] {
    const [a, b] = r.args;
    if (a.kind !== 'simple' || b.kind !== 'simple') throw new Error(`unsupported nesting in '${r.op}'`);
    const bs = new Set(this.candidates(b.dep));
    return this.candidates(a.dep).filter((p) => (r.op === 'with' ? bs.has(p) : !bs.has(p)));
  }

  private requireRich(pkg: RpmPackage, r: RichDep, by: string): void {
    // A condition may come true later: conditionals are kept even when they hold vacuously now.
    const conditional = r.kind === 'op' && (r.op === 'if' || r.op === 'unless');
    if (this.holds(r) && !conditional) return;
    if (r.kind === 'simple') return this.require(r.dep, by);
    switch (r.op) {
      case 'and':
        for (const x of r.args) this.requireRich(pkg, x, by);
        return;
      case 'or':
      case 'if':
      case 'unless':
        // Decided once the set stops growing: an alternative, or the condition, may be met by a package
        // chosen later for another reason (as dnf would prefer).
        if (!r.args.some((x) => this.possible(x)) && r.op === 'or')
          throw new Error(`nothing satisfies ${by.replace(/^.* needs /, '')} (${pkg.name} needs it)`);
        this.conditionals.push({ pkg, rich: r });
        return;
      case 'with':
      case 'without': {
        const [a, b] = r.args;
        if (a.kind !== 'simple' || b.kind !== 'simple') throw new Error(`unsupported nesting in '${r.op}'`);
        const bs = new Set(this.candidates(b.dep));
        const c = this.candidates(a.dep).filter((p) => (r.op === 'with' ? bs.has(p) : !bs.has(p)));
        c.sort((x, y) => x.name.length - y.name.length || newestFirst(x, y));
        if (!c[0])
          throw new Error(`nothing satisfies ${by.replace(/^.* needs /, '')} (${pkg.name} needs it)`);
        return this.select(c[0], by);
      }
    }
  }

  private possible(r: RichDep): boolean {
    if (r.kind === 'simple') return this.candidates(r.dep).length > 0;
    if (r.op === 'and') return r.args.every((x) => this.possible(x));
    if (r.op === 'or') return r.args.some((x) => this.possible(x));
    return true;
  }

  /**
   * Conditionals whose condition holds now need their consequence. With final, the else branches (and
   * "unless" consequences) of conditions that never came true are taken too. True if anything changed.
   */
  private settleConditionals(final: boolean): boolean {
    const before = this.order.length;
    for (const { pkg, rich } of this.conditionals) {
      if (rich.kind !== 'op' || this.holds(rich)) continue;
      const [a, b] = rich.args;
      const by = `${pkg.name} needs ${rich.op === 'or' ? 'one of several' : 'a conditional dependency'}`;
      if (rich.op === 'or') {
        const possible = rich.args.find((x) => this.possible(x));
        if (!possible) throw new Error(`nothing satisfies ${by} (${pkg.name})`);
        this.requireRich(pkg, possible, by);
        if (this.order.length !== before) return true;
        continue;
      }
      const cond = this.holds(b);
      if (rich.op === 'if') {
        if (cond) this.requireRich(pkg, a, by);
        else if (final && rich.otherwise) this.requireRich(pkg, rich.otherwise, by);
      } else if (cond) {
        if (rich.otherwise) this.requireRich(pkg, rich.otherwise, by);
      } else if (final) this.requireRich(pkg, a, by);
      if (this.order.length !== before) return true;
    }
    return this.order.length !== before;
  }

  /**
   * What dnf installs when asked for a package that another obsoletes (rust-analysis, folded into rust
   * in EL9): the newest obsoleter, by the shortest name first. Undefined when nothing obsoletes it.
   */
  private replacement(p: RpmPackage): RpmPackage | undefined {
    const by = (this.obsoleters.get(p.name) ?? []).filter((o) =>
      o.obsoletes.some((d) => d.name === p.name && rangesOverlap(selfProvide(p), d)),
    );
    by.sort(
      (a, b) =>
        a.name.length - b.name.length ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
        newestFirst(a, b),
    );
    const name = by[0]?.name;
    // The newest of that name, as long as it still obsoletes p.
    return name ? this.byName.get(name)?.find((o) => by.includes(o)) : undefined;
  }

  private obsoleted(p: RpmPackage): boolean {
    for (const other of this.selected.values())
      for (const o of other.obsoletes)
        if (o.name === p.name && other.name !== p.name && rangesOverlap(selfProvide(p), o)) return true;
    return false;
  }

  private checkConflicts(): void {
    for (const p of this.order)
      for (const c of p.conflicts) {
        // A rich conflict is a condition on the whole set, as rpm reads it: (A if B) conflicts unless B is in and A is not.
        if (isRich(c)) {
          if (this.holds(parseRich(c.name)))
            throw new Error(`${nevra(p)} conflicts with ${c.name}, which what is chosen satisfies`);
          continue;
        }
        const hit = this.candidates(c).find((q) => q !== p && this.selected.get(q.name) === q);
        if (hit) throw new Error(`${nevra(p)} conflicts with ${nevra(hit)} (${formatDep(c)})`);
      }
  }
}
