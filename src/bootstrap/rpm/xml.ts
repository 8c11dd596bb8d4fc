/**
 * A streaming reader for the XML that rpm-md repositories use (repomd, primary, filelists): elements,
 * attributes, text and the five named entities plus numeric ones. No DTDs, no namespaces resolved
 * (prefixes are kept in names, as "rpm:entry"). Fed in chunks, so a primary.xml of hundreds of MB
 * never sits in memory whole.
 */
export interface XmlHandler {
  open(name: string, attrs: Record<string, string>, selfClosing: boolean): void;
  close(name: string): void;
  text?(text: string): void;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (m, e: string) => {
    if (e[0] === '#')
      return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

const ATTR_RE = /([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

export class XmlStream {
  private rest = '';
  private depth = 0;

  constructor(private readonly h: XmlHandler) {}

  write(chunk: string): void {
    const s = this.rest + chunk;
    let i = 0;
    for (;;) {
      const lt = s.indexOf('<', i);
      // Text is only complete (its entities whole) once the next tag begins.
      if (lt < 0) break;
      if (lt > i) this.emitText(s.slice(i, lt));
      if (s.startsWith('<!--', lt)) {
        const end = s.indexOf('-->', lt + 4);
        if (end < 0) {
          i = lt;
          break;
        }
        i = end + 3;
        continue;
      }
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end < 0) {
          i = lt;
          break;
        }
        this.h.text?.(s.slice(lt + 9, end));
        i = end + 3;
        continue;
      }
      const gt = s.indexOf('>', lt + 1);
      if (gt < 0) {
        i = lt;
        break;
      }
      this.tag(s.slice(lt + 1, gt));
      i = gt + 1;
    }
    this.rest = s.slice(i);
  }

  /** Everything was fed: the document must have ended cleanly. */
  end(): void {
    if (this.rest.trim() || this.depth !== 0) throw new Error('XML document ends early');
  }

  private emitText(t: string): void {
    if (t && this.h.text) this.h.text(decodeEntities(t));
  }

  private tag(body: string): void {
    const c = body[0];
    if (c === '?' || c === '!') return;
    if (c === '/') {
      this.depth--;
      this.h.close(body.slice(1).trim());
      return;
    }
    const selfClosing = body.endsWith('/');
    const inner = selfClosing ? body.slice(0, -1) : body;
    const sp = inner.search(/\s/);
    const name = sp < 0 ? inner : inner.slice(0, sp);
    const attrs: Record<string, string> = {};
    if (sp >= 0) {
      ATTR_RE.lastIndex = 0;
      const a = inner.slice(sp);
      for (let m = ATTR_RE.exec(a); m; m = ATTR_RE.exec(a)) attrs[m[1]!] = decodeEntities(m[2] ?? m[3] ?? '');
    }
    this.h.open(name, attrs, selfClosing);
    if (selfClosing) this.h.close(name);
    else this.depth++;
  }
}
