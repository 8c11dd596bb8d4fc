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

  constructor(packages: RpmPackage[]) {
    for (const p of packages) {
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
    return new Closure(this.byName, this.providers, exclude).run(requested);
  }
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
    private readonly exclude: ReadonlySet<string>,
  ) {}

  run(requested: string[]): Resolution {
    for (const name of requested) {
      const dep: Dep = { name };
      if (this.satisfied(dep)) continue;
      const byName = this.byName.get(name)?.filter((p) => !this.obsoleted(p));
      const pick = byName?.[0] ?? this.best(dep);
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

  /** The provider to choose: the package named as the capability, then the shortest name, then by name; newest version. */
  private best(dep: Dep, alsoInRange: Dep[] = []): RpmPackage | undefined {
    const all = this.candidates(dep);
    const ranges = alsoInRange.map((r) => new Set(this.candidates(r)));
    const inAll = all.filter((p) => ranges.every((inRange) => inRange.has(p)));
    const c = inAll.length ? inAll : all;
    c.sort(
      (a, b) =>
        Number(b.name === dep.name) - Number(a.name === dep.name) ||
        a.name.length - b.name.length ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
        newestFirst(a, b),
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
    throw new Error(`nothing provides ${formatDep(dep)} (${by.replace(/ needs .*/, '')} needs it)`);
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

  private obsoleted(p: RpmPackage): boolean {
    for (const other of this.selected.values())
      for (const o of other.obsoletes)
        if (o.name === p.name && other.name !== p.name && rangesOverlap(selfProvide(p), o)) return true;
    return false;
  }

  private checkConflicts(): void {
    for (const p of this.order)
      for (const c of p.conflicts) {
        const hit = this.candidates(c).find((q) => q !== p && this.selected.get(q.name) === q);
        if (hit) throw new Error(`${nevra(p)} conflicts with ${nevra(hit)} (${formatDep(c)})`);
      }
  }
}
