/**
 * CentOS Stream 9 as far as the real data we have goes (test/fixtures/real/README.md): AppStream's
 * real primary.xml, and a stand-in for BaseOS, whose primary we do not have. The stand-in is made
 * from BaseOS's real filelists.xml: one package per BaseOS name and architecture, at its newest real
 * version, providing its name (and name(x86-64)) at that version and the files AppStream asks for; and
 * one more package providing, unversioned, every other capability AppStream requires and does not
 * provide itself (sonames, perl modules and the like, which filelists cannot tell). The stand-ins
 * require nothing, so a solve over them differs from the real one below BaseOS; what both resolvers
 * decide among AppStream's 17,649 real packages is real.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { isRich, parseRich, rangesOverlap, selfProvide, type RichDep } from '../../src/bootstrap/rpm/deps.js';
import { PrimaryReader, type Dep, type RpmPackage } from '../../src/bootstrap/rpm/metadata.js';
import { decodeEntities } from '../../src/bootstrap/rpm/xml.js';
import { rpmEvrCompare } from '../../src/util/version.js';
import { VMSTUB } from './cli.js';

export const REAL = resolve(VMSTUB, '..', '..', 'test', 'fixtures', 'real');
export const ARCHES = new Set(['x86_64', 'noarch']);

/** The file of a real repository's repodata/ whose name ends so (its names begin with a checksum). */
export const repodataFile = (repo: string, suffix: string) => {
  const dir = join(REAL, repo, 'repodata');
  return join(
    dir,
    readdirSync(dir).find((f) => f.endsWith(suffix))!,
  );
};

export const appstreamPrimaryPath = () => repodataFile('cs9-appstream', '-primary.xml.gz');

export function readAppstream(): RpmPackage[] {
  const reader = new PrimaryReader(ARCHES, 'appstream');
  reader.write(gunzipSync(readFileSync(appstreamPrimaryPath())).toString('utf8'));
  return reader.end();
}

interface BaseosPackage {
  name: string;
  arch: string;
  epoch: string;
  ver: string;
  rel: string;
  files: string[];
}

/** BaseOS's packages from its real filelists.xml, the newest version of each name and architecture. */
function readBaseos(): BaseosPackage[] {
  const xml = gunzipSync(readFileSync(repodataFile('cs9-baseos', '-filelists.xml.gz'))).toString('utf8');
  const newest = new Map<string, BaseosPackage>();
  const evr = (p: BaseosPackage) => `${p.epoch}:${p.ver}-${p.rel}`;
  for (const m of xml.matchAll(
    /<package pkgid="[^"]*" name="([^"]+)" arch="([^"]+)">\s*<version epoch="([^"]*)" ver="([^"]*)" rel="([^"]*)"\/>([\s\S]*?)<\/package>/g,
  )) {
    const [, name, arch, epoch, ver, rel, body] = m as unknown as string[];
    if (!ARCHES.has(arch!)) continue;
    const files = [...body!.matchAll(/<file(?: type="[^"]*")?>([^<]*)<\/file>/g)].map((f) =>
      decodeEntities(f[1]!),
    );
    const p = { name: name!, arch: arch!, epoch: epoch!, ver: ver!, rel: rel!, files };
    const key = `${name}.${arch}`;
    const have = newest.get(key);
    if (!have || rpmEvrCompare(evr(p), evr(have)) > 0) newest.set(key, p);
  }
  return [...newest.values()];
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function richDeps(d: RichDep): Dep[] {
  if (d.kind === 'simple') return [d.dep];
  return [...d.args.flatMap(richDeps), ...(d.otherwise ? richDeps(d.otherwise) : [])];
}

/**
 * What AppStream's packages require (or name in rich requirements) that none of them provides: the
 * capability, unversioned, or at the version asked for when AppStream has it only at others (python(abi)
 * = 3.9 is BaseOS's python3; AppStream's python3.11 provides 3.11).
 */
function unprovided(appstream: RpmPackage[]): Map<string, Dep[]> {
  const provided = new Map<string, Dep[]>();
  const add = (d: Dep) => provided.set(d.name, [...(provided.get(d.name) ?? []), d]);
  for (const p of appstream) {
    add(selfProvide(p));
    for (const d of p.provides) add(d);
    for (const f of p.files) add({ name: f });
  }
  const wanted = new Map<string, Dep[]>();
  for (const p of appstream)
    for (const d of p.requires) {
      const deps = isRich(d) ? richDeps(parseRich(d.name)) : [d];
      for (const dep of deps) {
        if (dep.name.startsWith('rpmlib(')) continue;
        const have = provided.get(dep.name);
        if (have?.some((h) => rangesOverlap(h, dep))) continue;
        const list = wanted.get(dep.name) ?? [];
        if (!have) list.length = 0;
        if (have && dep.flags && /EQ|GE|LE/.test(dep.flags)) list.push(dep);
        wanted.set(dep.name, list);
      }
    }
  return wanted;
}

interface StandIn {
  name: string;
  arch: string;
  epoch: string;
  ver: string;
  rel: string;
  provides: { name: string; evr?: [string, string, string] }[];
  files: string[];
}

function packageXml(p: StandIn): string {
  const nevra = `${p.name}-${p.epoch}:${p.ver}-${p.rel}.${p.arch}`;
  const sum = createHash('sha256').update(nevra).digest('hex');
  const provides = p.provides
    .map((d) =>
      d.evr
        ? `<rpm:entry name="${esc(d.name)}" flags="EQ" epoch="${d.evr[0]}" ver="${esc(d.evr[1])}" rel="${esc(d.evr[2])}"/>`
        : `<rpm:entry name="${esc(d.name)}"/>`,
    )
    .join('');
  return `<package type="rpm"><name>${esc(p.name)}</name><arch>${p.arch}</arch><version epoch="${p.epoch}" ver="${esc(p.ver)}" rel="${esc(p.rel)}"/><checksum type="sha256" pkgid="YES">${sum}</checksum><summary>stand-in</summary><description>stand-in</description><packager/><url/><time file="0" build="0"/><size package="1" installed="1" archive="1"/><location href="Packages/${esc(nevra)}.rpm"/><format><rpm:license>stand-in</rpm:license><rpm:provides>${provides}</rpm:provides>${p.files.map((f) => `<file>${esc(f)}</file>`).join('')}</format></package>\n`;
}

/** A repository directory whose repodata/ lists only this primary.xml.gz (what a solve needs). */
function writeRepo(dir: string, primaryGz: Buffer | string): string {
  mkdirSync(join(dir, 'repodata'), { recursive: true });
  const gz = typeof primaryGz === 'string' ? readFileSync(primaryGz) : primaryGz;
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const name = `${sha(gz)}-primary.xml.gz`;
  if (typeof primaryGz === 'string') symlinkSync(primaryGz, join(dir, 'repodata', name));
  else writeFileSync(join(dir, 'repodata', name), gz);
  const open = gunzipSync(gz);
  writeFileSync(
    join(dir, 'repodata', 'repomd.xml'),
    `<?xml version="1.0" encoding="UTF-8"?>\n<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm"><revision>1</revision><data type="primary"><checksum type="sha256">${sha(gz)}</checksum><open-checksum type="sha256">${sha(open)}</open-checksum><location href="repodata/${name}"/><timestamp>1736761412</timestamp><size>${gz.length}</size><open-size>${open.length}</open-size></data></repomd>\n`,
  );
  return dir;
}

export interface Cs9Repos {
  appstreamDir: string;
  baseosDir: string;
  appstream: RpmPackage[];
  baseos: RpmPackage[];
}

/** AppStream (its real primary) and the BaseOS stand-in, as repositories under dir and as packages. */
export function cs9Repos(dir: string): Cs9Repos {
  const appstream = readAppstream();
  const wanted = unprovided(appstream);
  const standIns: StandIn[] = readBaseos().map((b) => {
    const evr: [string, string, string] = [b.epoch, b.ver, b.rel];
    const provides = [{ name: b.name, evr }];
    if (b.arch === 'x86_64') provides.push({ name: `${b.name}(x86-64)`, evr });
    return { ...b, provides, files: b.files.filter((f) => wanted.has(f)) };
  });
  const covered = new Set(standIns.flatMap((s) => [...s.provides.map((p) => p.name), ...s.files]));
  const rest = [...wanted].filter(([n]) => !covered.has(n));
  standIns.push({
    name: 'baseos-stand-in',
    arch: 'noarch',
    epoch: '0',
    ver: '1',
    rel: '1',
    provides: rest
      .filter(([n]) => !n.startsWith('/'))
      .flatMap(([name, at]) =>
        at.length
          ? at.map((d) => ({
              name,
              evr: [d.epoch ?? '0', d.ver ?? '0', d.rel ?? ''] as [string, string, string],
            }))
          : [{ name }],
      ),
    files: rest.filter(([n]) => n.startsWith('/')).map(([n]) => n),
  });
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="${standIns.length}">\n${standIns.map(packageXml).join('')}</metadata>\n`;
  const baseosDir = writeRepo(join(dir, 'baseos'), gzipSync(xml));
  const reader = new PrimaryReader(ARCHES, 'baseos');
  reader.write(xml);
  return {
    appstreamDir: writeRepo(join(dir, 'appstream'), appstreamPrimaryPath()),
    baseosDir,
    appstream,
    baseos: reader.end(),
  };
}
