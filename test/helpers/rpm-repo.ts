/**
 * Fixture RPM repositories built with the real tools: rpmbuild makes the packages from generated spec
 * files, rpmsign signs them with a throwaway GnuPG key, createrepo_c indexes them. Served on loopback
 * by the caller (serveDirectory).
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';

export interface FixtureFile {
  content?: string;
  /** A file from this machine instead of content (busybox for a shell). */
  copyFrom?: string;
  mode?: number;
}

export interface FixtureRpm {
  name: string;
  version: string;
  release?: string;
  epoch?: number;
  requires?: string[];
  /** Requires(post): ordered before this package's %post runs. */
  requiresPost?: string[];
  provides?: string[];
  conflicts?: string[];
  obsoletes?: string[];
  files?: Record<string, FixtureFile>;
  post?: string;
}

export interface SigningKey {
  home: string;
  uid: string;
  /** The armored public key, as a distribution ships it. */
  publicKey: string;
  fingerprint: string;
}

const gpgEnv = (home: string) => ({ ...process.env, GNUPGHOME: home });

export interface SigningKeyOptions {
  /** gpg's expiry for the key ("never", "2021-01-01"). */
  expires?: string;
  /** The clock gpg runs with (--faked-system-time, e.g. "20200101T000000"): keys made in the past. */
  at?: string;
  /** A certify-only primary key with a signing subkey, as Gentoo's and many distributions' keys are. */
  signingSubkey?: boolean;
}

const fakedTime = (at: string | undefined) => (at ? [`--faked-system-time=${at}`] : []);

export function makeSigningKey(dir: string, name: string, o: SigningKeyOptions = {}): SigningKey {
  // gpg-agent's sockets live in the home, and a socket's path has at most 107 bytes: a deep one goes to /tmp.
  const deep = join(dir, `gnupg-${name}`);
  const home = join(deep, 'S.gpg-agent.browser').length < 100 ? deep : mkdtempSync(join(tmpdir(), 'gnupg-'));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const uid = `vmstub fixture ${name} <${name}@vmstub.invalid>`;
  const gpg = (args: string[]) =>
    execFileSync('gpg', ['--batch', '--quiet', ...fakedTime(o.at), ...args], {
      env: gpgEnv(home),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const usage = o.signingSubkey ? 'cert' : 'sign';
  gpg(['--passphrase', '', '--quick-gen-key', uid, 'rsa2048', usage, o.expires ?? 'never']);
  const fingerprint = /^fpr:(?:[^:]*:){8}([0-9A-F]+):/m.exec(
    gpg(['--with-colons', '--fingerprint', uid]).toString(),
  )![1]!;
  if (o.signingSubkey) gpg(['--passphrase', '', '--quick-add-key', fingerprint, 'rsa2048', 'sign', 'never']);
  const publicKey = join(dir, `RPM-GPG-KEY-${name}`);
  writeFileSync(publicKey, gpg(['--armor', '--export', uid]));
  return { home, uid, publicKey, fingerprint };
}

/** Set a key's expiry anew (a new self-signature), at the given clock. */
export function setExpiry(key: SigningKey, expires: string, at: string): void {
  execFileSync(
    'gpg',
    [
      '--batch',
      '--quiet',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      ...fakedTime(at),
      '--quick-set-expire',
      key.fingerprint,
      expires,
    ],
    { env: gpgEnv(key.home), stdio: 'ignore' },
  );
  writeFileSync(
    key.publicKey,
    execFileSync('gpg', ['--batch', '--armor', '--export', key.uid], { env: gpgEnv(key.home) }),
  );
}

function specFile(p: FixtureRpm): string {
  const lines = [
    `Name: ${p.name}`,
    `Version: ${p.version}`,
    `Release: ${p.release ?? '1'}`,
    ...(p.epoch !== undefined ? [`Epoch: ${p.epoch}`] : []),
    'Summary: vmstub test fixture',
    'License: MIT',
    'BuildArch: noarch',
    'AutoReqProv: no',
    ...(p.requires ?? []).map((r) => `Requires: ${r}`),
    ...(p.requiresPost ?? []).map((r) => `Requires(post): ${r}`),
    ...(p.provides ?? []).map((r) => `Provides: ${r}`),
    ...(p.conflicts ?? []).map((r) => `Conflicts: ${r}`),
    ...(p.obsoletes ?? []).map((r) => `Obsoletes: ${r}`),
    '',
    '%description',
    'A package built by vmstub tests.',
    '',
    '%install',
    'cp -a %{_sourcedir}/root-%{name}/. %{buildroot}/',
    '',
  ];
  if (p.post) lines.push('%post', p.post, '');
  lines.push('%files', ...Object.keys(p.files ?? {}), '');
  return lines.join('\n');
}

/** Builds each package with rpmbuild; returns the .rpm paths. */
export function buildRpms(dir: string, pkgs: FixtureRpm[]): string[] {
  const top = join(dir, 'rpmbuild');
  for (const d of ['SPECS', 'SOURCES', 'BUILD', 'RPMS', 'BUILDROOT'])
    mkdirSync(join(top, d), { recursive: true });
  const out: string[] = [];
  for (const p of pkgs) {
    const root = join(top, 'SOURCES', `root-${p.name}`);
    mkdirSync(root, { recursive: true });
    for (const [path, f] of Object.entries(p.files ?? {})) {
      const dest = join(root, path);
      mkdirSync(dirname(dest), { recursive: true });
      if (f.copyFrom) copyFileSync(f.copyFrom, dest);
      else writeFileSync(dest, f.content ?? '');
      chmodSync(dest, f.mode ?? 0o644);
    }
    const spec = join(top, 'SPECS', `${p.name}-${p.version}.spec`);
    writeFileSync(spec, specFile(p));
    execFileSync(
      'rpmbuild',
      [
        '-bb',
        '--nodeps',
        '--quiet',
        '--define',
        `_topdir ${top}`,
        '--define',
        '_binaries_in_noarch_packages_terminate_build 0',
        '--define',
        '__os_install_post %{nil}',
        '--define',
        '_build_id_links none',
        spec,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const rel = p.release ?? '1';
    out.push(join(top, 'RPMS', 'noarch', `${p.name}-${p.version}-${rel}.noarch.rpm`));
    // Rebuilding the same name in another version must not pick up this one's tree.
    execFileSync('rm', ['-rf', root]);
  }
  return out;
}

/** rpmsign with the key; `at` signs as of that time (gpg's --faked-system-time). */
export function signRpms(files: string[], key: SigningKey, at?: string): void {
  execFileSync(
    'rpmsign',
    [
      '--addsign',
      '--define',
      '__gpg /usr/bin/gpg',
      '--define',
      `_gpg_name ${key.uid}`,
      '--define',
      `_gpg_path ${key.home}`,
      ...(at ? ['--define', `_gpg_sign_cmd_extra_args --batch ${fakedTime(at).join(' ')}`] : []),
      ...files,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RPM_FORCE_DEBIAN: '1' } },
  );
}

export interface RepoOptions {
  /** primary.xml compressed with zstd, as Fedora 41+ publishes it (createrepo_c 0.17 writes gzip only). */
  zstdPrimary?: boolean;
}

/** A repository directory: Packages/ with the files, repodata/ by createrepo_c. */
export function makeRepo(dir: string, rpms: string[], o: RepoOptions = {}): string {
  mkdirSync(join(dir, 'Packages'), { recursive: true });
  for (const f of rpms) copyFileSync(f, join(dir, 'Packages', f.split('/').pop()!));
  execFileSync('createrepo_c', ['--quiet', '--no-database', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (o.zstdPrimary) recompressPrimary(dir);
  return dir;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function recompressPrimary(dir: string): void {
  const repodata = join(dir, 'repodata');
  const repomdPath = join(repodata, 'repomd.xml');
  let repomd = readFileSync(repomdPath, 'utf8');
  const gz = readdirSync(repodata).find((f) => f.endsWith('primary.xml.gz'))!;
  const xml = execFileSync('gzip', ['-dc', join(repodata, gz)]);
  const zst = execFileSync('zstd', ['-q', '-c'], { input: xml });
  const name = `${sha256(zst)}-primary.xml.zst`;
  writeFileSync(join(repodata, name), zst);
  repomd = repomd.replace(/<data type="primary">[\s\S]*?<\/data>/, (block) =>
    block
      .replace(
        /<checksum type="sha256">[0-9a-f]+<\/checksum>/,
        `<checksum type="sha256">${sha256(zst)}</checksum>`,
      )
      .replace(/href="repodata\/[^"]+"/, `href="repodata/${name}"`)
      .replace(/<size>\d+<\/size>/, `<size>${zst.length}</size>`),
  );
  writeFileSync(repomdPath, repomd);
}

const BUSYBOX = '/bin/busybox';

/** A small distribution: a release package, a shell, a package manager stand-in with every kind of dependency. */
export function fixturePackages(releaseKey: string): FixtureRpm[] {
  return [
    {
      name: 'fixture-release',
      version: '9.0',
      provides: ['system-release', 'system-release(releasever) = 9'],
      files: {
        '/etc/fixture-release': { content: 'Fixture Linux 9\n' },
        '/etc/pki/rpm-gpg/RPM-GPG-KEY-fixture': { content: releaseKey },
      },
    },
    {
      name: 'shell',
      version: '1.36',
      files: {
        '/bin/sh': { copyFrom: BUSYBOX, mode: 0o755 },
        '/var/log/fixture/.keep': { content: '' },
      },
    },
    {
      name: 'pkgmgr',
      version: '4.2',
      requires: [
        'fixture-release',
        'libfoo >= 2.0',
        'libfoo < 3.0',
        '(tool-a or tool-b)',
        '(lang-en if tool-b)',
        '/usr/libexec/helper',
        'libbar',
      ],
      requiresPost: ['/bin/sh'],
      files: { '/usr/bin/pkgmgr': { content: '#!/bin/sh\necho pkgmgr\n', mode: 0o755 } },
      post: 'read release < /etc/fixture-release; echo "pkgmgr $release" >> /var/log/fixture/post.log',
    },
    ...['1.0', '2.0', '2.5', '3.0'].map((version) => ({
      name: 'libfoo',
      version,
      files: { '/usr/lib/libfoo.txt': { content: `libfoo ${version}\n` } },
    })),
    {
      name: 'libbar',
      version: '1.0',
      epoch: 1,
      requires: ['tool-b'],
      files: { '/usr/lib/libbar.txt': { content: '1:1.0\n' } },
    },
    {
      name: 'libbar',
      version: '2.0',
      requires: ['tool-b'],
      files: { '/usr/lib/libbar.txt': { content: '2.0\n' } },
    },
    { name: 'tool-a', version: '1.0', files: { '/usr/share/tool-a': { content: 'a\n' } } },
    { name: 'tool-b', version: '1.0', files: { '/usr/share/tool-b': { content: 'b\n' } } },
    { name: 'lang-en', version: '1.0', files: { '/usr/share/lang-en': { content: 'en\n' } } },
    // A path primary.xml does not list: only filelists.xml says who has it.
    {
      name: 'helper',
      version: '1.0',
      files: { '/usr/libexec/helper': { content: '#!/bin/sh\n', mode: 0o755 } },
    },
    { name: 'unrelated', version: '9.9', files: { '/usr/share/unrelated': { content: 'x\n' } } },
  ];
}

export const EXPECTED = [
  'fixture-release-9.0-1',
  'helper-1.0-1',
  'lang-en-1.0-1',
  'libbar-1.0-1',
  'libfoo-2.5-1',
  'pkgmgr-4.2-1',
  'shell-1.36-1',
  'tool-b-1.0-1',
];

export function installedIn(root: string, dbpath = '/var/lib/rpm'): string[] {
  const out = execFileSync(
    'rpm',
    ['--root', root, '--dbpath', dbpath, '-qa', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}\n'],
    {
      encoding: 'utf8',
    },
  );
  return out
    .split('\n')
    .filter((l) => l && !l.startsWith('gpg-pubkey'))
    .sort();
}
