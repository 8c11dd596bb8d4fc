/**
 * Which downloads the package cache keeps, and how. A file whose name changes whenever its bytes do
 * (a package, an index fetched by its hash) is kept for good; every other file (InRelease, Release,
 * repomd.xml, an index under its plain name) can change on the mirror, so it is always fetched
 * afresh and its copy is served only when the mirror cannot be reached.
 */

export type Keeping = 'immutable' | 'index' | 'pass';

/** Names that never change their bytes, by the conventions of Debian's, Ubuntu's and RPM repositories. */
const IMMUTABLE: RegExp[] = [
  // apt's Acquire-By-Hash: dists/<suite>/<component>/binary-<arch>/by-hash/SHA256/<digest>
  /\/by-hash\/(MD5Sum|SHA1|SHA256|SHA512)\/[0-9a-f]{32,128}$/,
  // packages: a new build is a new version, so a new name (Debian's archive refuses the same name twice)
  /\.(deb|udeb|ddeb|rpm|drpm)$/,
  // createrepo's unique metadata names: repodata/<digest>-primary.xml.gz
  /\/repodata\/[0-9a-f]{32,128}-[\w.-]+$/,
];

/**
 * How a GET of this URL is kept: only plain http (an https download is a tunnel the cache cannot
 * read), and not one with a query (a mirror that answers by query may answer differently each time).
 */
export function keepingOf(url: URL): Keeping {
  if (url.protocol !== 'http:' || url.search) return 'pass';
  return IMMUTABLE.some((re) => re.test(url.pathname)) ? 'immutable' : 'index';
}

/**
 * Where a URL's copy lives under the cache: host (and port) then the path, as the mirror names it,
 * so the cache reads like a mirror. The URL parser has resolved any "..", and a name ending in / is
 * the mirror's directory listing, which is not kept.
 */
export function cachePath(url: URL): string | undefined {
  if (url.pathname.endsWith('/')) return undefined;
  const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (segments.some((s) => s === '..' || s === '.' || s.includes('/') || s.includes('\0'))) return undefined;
  return [url.host.replace(/:/g, '_'), ...segments].join('/');
}
