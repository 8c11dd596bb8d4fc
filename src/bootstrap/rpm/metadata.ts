/**
 * rpm-md repository metadata: repomd.xml (which files, their checksums) and primary.xml (packages with
 * their dependencies) read into plain data. Pure: strings and chunks in, objects out.
 */
import { XmlStream } from './xml.js';

export interface Checksum {
  type: string;
  value: string;
}

export interface RepomdEntry {
  type: string;
  href: string;
  checksum: Checksum;
  /** Of the uncompressed file. */
  openChecksum?: Checksum;
  size?: number;
}

export type DepFlag = 'EQ' | 'LT' | 'LE' | 'GT' | 'GE';

/** One rpm:entry: a capability, optionally with a version range. A name starting with "(" is a rich dependency. */
export interface Dep {
  name: string;
  flags?: DepFlag;
  epoch?: string;
  ver?: string;
  rel?: string;
  pre?: boolean;
}

export interface RpmPackage {
  name: string;
  arch: string;
  epoch: string;
  ver: string;
  rel: string;
  href: string;
  /** xml:base of the location, when the package lives elsewhere than the repository. */
  base?: string;
  checksum: Checksum;
  size: number;
  provides: Dep[];
  requires: Dep[];
  conflicts: Dep[];
  obsoletes: Dep[];
  /** The files primary lists (createrepo keeps /etc/*, *bin/* and a few more). */
  files: string[];
  /** The repository it came from (its id), set by whoever loads it. */
  repo: string;
}

export const nevra = (p: Pick<RpmPackage, 'name' | 'epoch' | 'ver' | 'rel' | 'arch'>): string =>
  `${p.name}-${p.epoch && p.epoch !== '0' ? `${p.epoch}:` : ''}${p.ver}-${p.rel}.${p.arch}`;

const localName = (n: string) => n.slice(n.indexOf(':') + 1);

export function parseRepomd(xml: string): RepomdEntry[] {
  const entries: RepomdEntry[] = [];
  let cur: Partial<RepomdEntry> | undefined;
  let field: 'checksum' | 'open-checksum' | 'size' | undefined;
  let fieldType = '';
  let text = '';
  const s = new XmlStream({
    open(name, attrs) {
      const n = localName(name);
      if (n === 'data') cur = { type: attrs.type };
      else if (cur && n === 'location') cur.href = attrs.href;
      else if (cur && (n === 'checksum' || n === 'open-checksum' || n === 'size')) {
        field = n;
        fieldType = attrs.type ?? '';
        text = '';
      }
    },
    close(name) {
      const n = localName(name);
      if (cur && field && n === field) {
        const value = text.trim();
        if (field === 'checksum') cur.checksum = { type: fieldType, value };
        else if (field === 'open-checksum') cur.openChecksum = { type: fieldType, value };
        else cur.size = Number(value);
        field = undefined;
      } else if (n === 'data' && cur) {
        if (!cur.type || !cur.href || !cur.checksum)
          throw new Error('repomd.xml: a data entry lacks its location or checksum');
        entries.push(cur as RepomdEntry);
        cur = undefined;
      }
    },
    text(t) {
      if (field) text += t;
    },
  });
  s.write(xml);
  s.end();
  if (!entries.length) throw new Error('repomd.xml lists no metadata');
  return entries;
}

const DEP_LISTS = ['provides', 'requires', 'conflicts', 'obsoletes'] as const;
type DepList = (typeof DEP_LISTS)[number];

/**
 * A streaming primary.xml reader: feed it decoded text, take the packages at the end. Only packages
 * of the given architectures are kept (the rest are skipped as they stream past).
 */
export class PrimaryReader {
  readonly packages: RpmPackage[] = [];
  private cur: Partial<RpmPackage> | undefined;
  private list: DepList | undefined;
  private field: string | undefined;
  private text = '';
  private sawMetadata = false;
  private readonly xml: XmlStream;

  constructor(
    private readonly arches: ReadonlySet<string>,
    private readonly repo: string,
  ) {
    this.xml = new XmlStream({
      open: (name, attrs) => this.open(localName(name), attrs),
      close: (name) => this.close(localName(name)),
      text: (t) => {
        if (this.field) this.text += t;
      },
    });
  }

  write(chunk: string): void {
    this.xml.write(chunk);
  }

  end(): RpmPackage[] {
    if (!this.sawMetadata) throw new Error('not primary metadata: it has no <metadata> element');
    this.xml.end();
    return this.packages;
  }

  private open(n: string, a: Record<string, string>): void {
    if (n === 'metadata') this.sawMetadata = true;
    if (n === 'package') {
      this.cur = { provides: [], requires: [], conflicts: [], obsoletes: [], files: [], repo: this.repo };
      return;
    }
    const p = this.cur;
    if (!p) return;
    if (n === 'version') {
      p.epoch = a.epoch ?? '0';
      p.ver = a.ver;
      p.rel = a.rel;
    } else if (n === 'location') {
      p.href = a.href;
      if (a['xml:base']) p.base = a['xml:base'];
    } else if (n === 'size') p.size = Number(a.package);
    else if ((DEP_LISTS as readonly string[]).includes(n)) this.list = n as DepList;
    else if (n === 'entry' && this.list) {
      const d: Dep = { name: a.name ?? '' };
      if (a.flags) d.flags = a.flags as DepFlag;
      if (a.epoch !== undefined) d.epoch = a.epoch;
      if (a.ver !== undefined) d.ver = a.ver;
      if (a.rel !== undefined) d.rel = a.rel;
      if (a.pre === '1') d.pre = true;
      p[this.list]!.push(d);
    } else if (n === 'name' || n === 'arch' || n === 'file' || n === 'checksum') {
      this.field = n;
      this.text = '';
      if (n === 'checksum') p.checksum = { type: a.type ?? 'sha256', value: '' };
    }
  }

  private close(n: string): void {
    const p = this.cur;
    if (!p) return;
    if (this.field === n) {
      const t = this.text.trim();
      if (n === 'name') p.name = t;
      else if (n === 'arch') p.arch = t;
      else if (n === 'file') p.files!.push(t);
      else if (n === 'checksum') p.checksum!.value = t;
      this.field = undefined;
    } else if (this.list === n) this.list = undefined;
    else if (n === 'package') {
      if (p.arch && this.arches.has(p.arch)) {
        if (!p.name || !p.ver || p.rel === undefined || !p.href || !p.checksum?.value)
          throw new Error(`primary.xml: package ${p.name ?? '?'} lacks its version, location or checksum`);
        this.packages.push(p as RpmPackage);
      }
      this.cur = undefined;
    }
  }
}

/**
 * filelists.xml, read for the few paths a dependency names that primary does not list
 * (/usr/libexec/platform-python on EL8, say): which package (by pkgid = checksum) holds each wanted path.
 */
export class FilelistsReader {
  readonly found = new Map<string, string[]>();
  private pkgid: string | undefined;
  private inFile = false;
  private text = '';
  private readonly xml: XmlStream;

  constructor(private readonly wanted: ReadonlySet<string>) {
    this.xml = new XmlStream({
      open: (name, a) => {
        const n = localName(name);
        if (n === 'package') this.pkgid = a.pkgid;
        else if (n === 'file') {
          this.inFile = true;
          this.text = '';
        }
      },
      close: (name) => {
        if (localName(name) === 'file' && this.inFile) {
          this.inFile = false;
          const path = this.text.trim();
          const id = this.pkgid;
          if (id && this.wanted.has(path)) {
            const list = this.found.get(id) ?? [];
            list.push(path);
            this.found.set(id, list);
          }
        }
      },
      text: (t) => {
        if (this.inFile) this.text += t;
      },
    });
  }

  write(chunk: string): void {
    this.xml.write(chunk);
  }

  end(): Map<string, string[]> {
    this.xml.end();
    return this.found;
  }
}
