/**
 * A signed apt mirror served on loopback, for distributions these machines cannot reach (Ubuntu): real
 * Debian 12 packages published under another distribution's suite names, plus dummy packages for the
 * names only that distribution has. apt, gpgv and mmdebstrap treat it as any other mirror.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';
import { testCacheDir } from './fixture.js';

function sh(
  cmd: string,
  args: string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): string {
  return execFileSync(cmd, args, {
    ...o,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 1 << 28,
  });
}

/**
 * Every .deb that a Debian 12 minbase system with these packages needs, downloaded once by mmdebstrap
 * itself (so the set is exactly what apt resolves) and kept in the test cache.
 */
export function debianPool(packages: string[]): string {
  const key = createHash('sha256')
    .update([...packages].sort().join(','))
    .digest('hex')
    .slice(0, 16);
  const dir = join(testCacheDir(), `deb-pool-bookworm-${key}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial, { recursive: true });
  sh('mmdebstrap', [
    '--variant=minbase',
    `--include=${packages.join(',')}`,
    '--skip=essential/unlink',
    `--customize-hook=sync-out /var/cache/apt/archives ${partial}`,
    'bookworm',
    '/dev/null',
    'http://deb.debian.org/debian',
  ]);
  rmSync(join(partial, 'lock'), { force: true });
  rmSync(join(partial, 'partial'), { recursive: true, force: true });
  writeFileSync(join(partial, '.complete'), '');
  rmSync(dir, { recursive: true, force: true });
  renameSync(partial, dir);
  return dir;
}

/** A package with no files of its own that stands for NAME by depending on real packages. */
export function dummyDeb(dir: string, name: string, depends: string[]): string {
  const root = mkdtempSync(join(tmpdir(), `dummy-${name}-`));
  mkdirSync(join(root, 'DEBIAN'));
  writeFileSync(
    join(root, 'DEBIAN', 'control'),
    [
      `Package: ${name}`,
      'Version: 99.0-vmstub1',
      'Architecture: amd64',
      'Priority: optional',
      'Section: misc',
      'Maintainer: vmstub tests <tests@vmstub.invalid>',
      `Depends: ${depends.join(', ')}`,
      `Description: fixture stand-in for ${name}`,
      '',
    ].join('\n'),
  );
  const out = join(dir, `${name}_99.0-vmstub1_amd64.deb`);
  sh('dpkg-deb', ['--root-owner-group', '--build', root, out]);
  rmSync(root, { recursive: true, force: true });
  return out;
}

/** A copy of a .deb in dir whose Depends gains more (for a package the fixture's release ships differently). */
export function withMoreDepends(dir: string, deb: string, more: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'repack-'));
  sh('dpkg-deb', ['--raw-extract', deb, root]);
  const controlFile = join(root, 'DEBIAN', 'control');
  const control = readFileSync(controlFile, 'utf8');
  writeFileSync(
    controlFile,
    /^Depends: /m.test(control)
      ? control.replace(/^Depends: (.*)$/m, (_: string, d: string) => `Depends: ${[d, ...more].join(', ')}`)
      : `${control.trimEnd()}\nDepends: ${more.join(', ')}\n`,
  );
  const out = join(dir, deb.split('/').pop()!);
  sh('dpkg-deb', ['--root-owner-group', '--build', root, out]);
  rmSync(root, { recursive: true, force: true });
  return out;
}

export interface MirrorLayout {
  /** Suites with every package (the release suite) and suites that exist but are empty (updates, security). */
  suites: string[];
  emptySuites: string[];
  components: string[];
  origin: string;
}

export interface FixtureMirror {
  dir: string;
  /** An OpenPGP keyring (binary) with the key that signs the mirror's Release files. */
  keyring: string;
  /** A keyring with an unrelated key, for signature failure tests. */
  wrongKeyring: string;
}

function newKey(home: string, uid: string): void {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  sh('gpg', [
    '--batch',
    '--homedir',
    home,
    '--passphrase',
    '',
    '--quick-gen-key',
    uid,
    'ed25519',
    'sign',
    'never',
  ]);
}

/**
 * Builds the mirror tree: pool/main holds the debs, the first component of each full suite lists them,
 * the other components and the empty suites list nothing; every Release is signed (InRelease and Release.gpg).
 */
export function buildMirror(dir: string, debs: string[], layout: MirrorLayout): FixtureMirror {
  const pool = join(dir, 'pool', 'main');
  mkdirSync(pool, { recursive: true });
  for (const deb of debs) copyFileSync(deb, join(pool, deb.split('/').pop()!));
  // Priorities and sections come from the archive's override file, not the debs: carry the debs' own.
  const override = join(dir, '..', 'override');
  writeFileSync(
    override,
    readdirSync(pool)
      .map((f) =>
        sh('dpkg-deb', ['--show', '--showformat=${Package} ${Priority} ${Section}\n', join(pool, f)]),
      )
      .join(''),
  );
  const packages = sh('apt-ftparchive', ['packages', 'pool', override], { cwd: dir });

  const gnupg = join(dir, '..', 'gnupg');
  newKey(gnupg, 'vmstub fixture mirror <mirror@vmstub.invalid>');
  const keyring = join(dir, '..', 'mirror-keyring.gpg');
  writeFileSync(keyring, execFileSync('gpg', ['--batch', '--homedir', gnupg, '--export']));
  const otherHome = join(dir, '..', 'gnupg-other');
  newKey(otherHome, 'unrelated key <other@vmstub.invalid>');
  const wrongKeyring = join(dir, '..', 'wrong-keyring.gpg');
  writeFileSync(wrongKeyring, execFileSync('gpg', ['--batch', '--homedir', otherHome, '--export']));

  for (const suite of [...layout.suites, ...layout.emptySuites]) {
    const full = layout.suites.includes(suite);
    layout.components.forEach((component, i) => {
      const bin = join(dir, 'dists', suite, component, 'binary-amd64');
      mkdirSync(bin, { recursive: true });
      writeFileSync(join(bin, 'Packages'), full && i === 0 ? packages : '');
    });
    const release = join(dir, 'dists', suite);
    const fields = {
      Origin: layout.origin,
      Label: layout.origin,
      Suite: suite,
      Codename: suite,
      Architectures: 'amd64',
      Components: layout.components.join(' '),
    };
    const opts = Object.entries(fields).flatMap(([k, v]) => ['-o', `APT::FTPArchive::Release::${k}=${v}`]);
    const text = sh('apt-ftparchive', [...opts, 'release', '.'], { cwd: release });
    writeFileSync(join(release, 'Release'), text);
    sh('gpg', [
      '--batch',
      '--homedir',
      gnupg,
      '--yes',
      '--clearsign',
      '-o',
      join(release, 'InRelease'),
      join(release, 'Release'),
    ]);
    sh('gpg', [
      '--batch',
      '--homedir',
      gnupg,
      '--yes',
      '-abs',
      '-o',
      join(release, 'Release.gpg'),
      join(release, 'Release'),
    ]);
  }
  return { dir, keyring, wrongKeyring };
}

/** Serves DIR read-only on 127.0.0.1 under PREFIX; resolves to the base URL. */
export function serveDirectory(
  dir: string,
  prefix: string,
): Promise<{ url: string; server: Server; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    requests.push(path);
    const rel = path.startsWith(`/${prefix}/`) ? path.slice(prefix.length + 2) : undefined;
    const file = rel === undefined ? undefined : normalize(join(dir, rel));
    if (!file || !file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': statSync(file).size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({ url: `http://127.0.0.1:${port}/${prefix}`, server, requests });
    });
  });
}

/** The .deb files in a directory. */
export function debsIn(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.deb'))
    .map((f) => join(dir, f));
}
