/**
 * A fixture RPM distribution made of real, bootable binaries, for the EL recipes these machines cannot
 * reach a mirror of. Debian 12's binaries are the ones at hand: mmdebstrap installs the Debian packages
 * that stand for a recipe's package set into a directory once (so every maintainer script has run and
 * the tree boots as Debian's does), and the tree is then split back into one RPM per Debian package by
 * dpkg's own file lists, under the names the recipe asks for, and built with rpmbuild, signed with
 * rpmsign and indexed by createrepo_c as a BaseOS and an AppStream repository.
 *
 * What the resolvers meet is Debian's real dependency graph, translated: Depends and Pre-Depends become
 * Requires with their versions (Debian epochs become RPM epochs), alternatives become rich `or`
 * dependencies, Provides stay Provides, and a Debian package the recipe knows by another name is built
 * under that name, providing and obsoleting the Debian one. What is not Debian's, and said so here:
 *
 * - `filesystem` (the merged-/usr links and the top directories), `setup` (every file a Debian
 *   maintainer script made: /etc/passwd and its kin, alternatives, unit links, sshd_config), and
 *   `basesystem` (requires Debian's essential set, which Debian packages never name; glibc requires it,
 *   as on EL);
 * - the release package (os-release, the repository file, the key, `system-release(releasever)`);
 * - the kernel laid out as EL's kernel-core is (`/lib/modules/V/vmlinuz`), whose %posttrans runs
 *   systemd's kernel-install, as EL's does, with the file dependency on it;
 * - two kernel-install plugins Debian does not ship, standing for EL's: grub2-common's (the kernel in
 *   /boot and a Boot Loader Specification entry) and dracut's (`/boot/initramfs-V.img` made by dracut);
 * - rpm's database path set where the recipe's rpm keeps it (Debian's rpm keeps it in ~/.rpmdb),
 *   dnf.conf as EL's dnf ships it, sshd.service as EL names OpenSSH's unit, `/bin/sh` and `/bin/bash`
 *   provided by the shells, the rpm command required by rpm's Python binding, and the wheel group in
 *   setup's /etc/group, as on EL.
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { RpmDistro } from '../../src/catalog/types.js';
import { canonicalPath, debianTree, digest, installedPackages, sh } from './debian-tree.js';
import { testCacheDir } from './fixture.js';
import { makeRepo, makeSigningKey, signRpms, type SigningKey } from './rpm-repo.js';

/** The Debian packages that stand for each name an EL recipe installs (the first is renamed to it). */
const STANDS_FOR: Record<string, string[]> = {
  kernel: ['linux-image-cloud-amd64'],
  dracut: ['dracut'],
  // what an image's live ISO and vmstub's small initramfs are made with (vmstub image build)
  'dracut-live': ['dracut-live'],
  'dracut-config-generic': ['dracut-config-generic'],
  zstd: ['zstd'],
  kmod: ['kmod'],
  systemd: ['systemd', 'systemd-sysv', 'udev', 'dbus', 'libpam-systemd'],
  passwd: ['passwd'],
  sudo: ['sudo'],
  'openssh-server': ['openssh-server'],
  'openssh-clients': ['openssh-client'],
  NetworkManager: ['network-manager'],
  iproute: ['iproute2'],
  'qemu-guest-agent': ['qemu-guest-agent'],
  avahi: ['avahi-daemon'],
  xfsprogs: ['xfsprogs'],
  tzdata: ['tzdata'],
  tar: ['tar'],
  less: ['less'],
  'vim-minimal': ['vim-tiny'],
  dnf: ['dnf'],
  dnf5: ['dnf5'],
  'systemd-resolved': ['systemd-resolved'],
  rpm: ['rpm'],
};

/**
 * The Debian suite whose binaries stand for a recipe: Debian 12's, but for dnf5, which only Debian
 * unstable has (with the libraries and kernel of unstable under it).
 */
export const debianSuiteFor = (d: RpmDistro) =>
  d.packageManager === 'dnf5'
    ? { suite: 'sid', name: 'Debian unstable' }
    : { suite: 'bookworm', name: 'Debian 12' };

/** Requires EL's packages have and Debian's do not: the rpm command comes with rpm's Python binding. */
const EL_REQUIRES: Record<string, string[]> = { 'python3-rpm': ['rpm'] };

/**
 * Provides EL's packages have and Debian's do not: the shells by their /bin paths (EL's bash provides
 * them for scriptlets, whose interpreter rpm always requires; merged /usr put the files in /usr/bin).
 */
const EL_PROVIDES: Record<string, string[]> = { dash: ['/bin/sh'], bash: ['/bin/bash'] };

/** EL's repository split, roughly: these in AppStream, the rest in BaseOS. */
const APPSTREAM = new Set(['qemu-guest-agent', 'vim-minimal']);

export interface Evr {
  epoch?: number;
  version: string;
  release: string;
}

/** A Debian version as RPM's epoch, version and release ('-' is not allowed in an RPM version). */
export function debianEvr(v: string): Evr {
  const m = /^(?:(\d+):)?(.+?)(?:-([^-]+))?$/.exec(v.trim())!;
  return {
    ...(m[1] !== undefined ? { epoch: Number(m[1]) } : {}),
    version: m[2]!.replace(/[-:]/g, '_'),
    release: m[3] ?? '0',
  };
}

export const evrText = (e: Evr) => `${e.epoch !== undefined ? `${e.epoch}:` : ''}${e.version}-${e.release}`;

const OPERATORS: Record<string, string> = { '>=': '>=', '<=': '<=', '>>': '>', '<<': '<', '=': '=' };

/** One Debian relation (`a (>= 1) | b:any`) as an RPM dependency (`(a >= 1:... or b)`), names mapped. */
export function rpmDependency(relation: string, rename: (debian: string) => string): string {
  const alternatives = relation.split('|').map((alt) => {
    const m =
      /^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(>=|<=|>>|<<|=)\s*([^)\s]+)\s*\))?\s*$/.exec(alt);
    if (!m) throw new Error(`cannot read the Debian relation '${alt}'`);
    const name = rename(m[1]!);
    if (!m[2]) return name;
    // Debian's empty revision sorts below any other, as release 0 does (native packages get 0 too):
    // without it, rpm would compare versions alone and `>> 2.36` would refuse 2.36-9.
    const evr = evrText(debianEvr(m[3]!));
    return `${name} ${OPERATORS[m[2]]!} ${evr}`;
  });
  return alternatives.length === 1 ? alternatives[0]! : `(${alternatives.join(' or ')})`;
}

const relations = (field: string) =>
  field
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);

export interface FixtureRecipe {
  /** The catalog entry the fixture stands in for: its release package, database path and repositories. */
  distro: RpmDistro;
  /** Everything both passes install (the first pass's packages and the system's). */
  packages: string[];
}

/** What is never packaged: the state of Debian's package manager, and what makes one machine itself. */
const NEVER = [
  /^\/var\/lib\/(dpkg|apt|ucf)(\/|$)/,
  /^\/var\/cache\//,
  /^\/var\/log\/./,
  /^\/(dev|proc|sys|run|tmp)\/./,
  /^\/etc\/(machine-id|hostname|resolv\.conf|mailname)$/,
  /^\/var\/lib\/dbus\/machine-id$/,
  /^\/etc\/ssh\/ssh_host_/,
  /^\/boot\/initrd\.img/,
  /^\/(vmlinuz|initrd\.img)(\.old)?$/,
  /^\/etc\/(os-release|debian_version)$/,
  /^\/usr\/lib\/os-release$/,
  /^\/etc\/apt(\/|$)/,
  // dnf5's local plugin (a local repository of every package installed, made by createrepo_c): Fedora
  // ships it in a package of its own that a system does not install; Debian's libdnf5 enables it.
  /^\/etc\/dnf\/libdnf5-plugins\/local\.conf$/,
];

/**
 * A path as rpmbuild's %files reads it: quoted, `%` doubled, and each glob character or backslash given
 * as `?`, which matches it (rpmbuild's quoting keeps neither a bracket nor a backslash literal).
 */
export function filesEntry(path: string): string {
  return `"${path.replace(/[\\[\]*?{}]/g, '?').replace(/%/g, '%%')}"`;
}

interface Subpackage {
  name: string;
  evr: Evr;
  requires: string[];
  /** Requires(posttrans): what the %posttrans scriptlet runs. */
  requiresPosttrans?: string[];
  provides: string[];
  obsoletes: string[];
  files: string[];
  dirs: string[];
  posttrans?: string;
  summary: string;
}

/** The tree's files and directories (paths from its root), not crossing into /proc and the like. */
function walk(root: string): { files: string[]; dirs: string[] } {
  const files: string[] = [];
  const dirs: string[] = [];
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const path = `${rel}/${name}`;
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) {
        dirs.push(path);
        visit(path);
      } else files.push(path);
    }
  };
  visit('');
  return { files, dirs };
}

/** `uid:gid` to `user,group` names of the tree's own accounts (rpm stores names, not numbers). */
function accountNames(root: string): { user: Map<number, string>; group: Map<number, string> } {
  const read = (file: string) =>
    new Map(
      readFileSync(join(root, 'etc', file), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':'))
        .map((f) => [Number(f[2]), f[0]!] as [number, string]),
    );
  return { user: read('passwd'), group: read('group') };
}

/** One spec for every package: the first is the main package, the others subpackages of their own names. */
function specText(packages: Subpackage[], tree: string, debianName: string): string {
  const { user, group } = accountNames(tree);
  const attr = (path: string) => {
    const st = lstatSync(join(tree, path));
    if (st.uid === 0 && st.gid === 0) return '';
    return `%attr(-,${user.get(st.uid) ?? 'root'},${group.get(st.gid) ?? 'root'}) `;
  };
  const [main, ...subs] = packages;
  const header = (p: Subpackage) => [
    `Version: ${p.evr.version}`,
    `Release: ${p.evr.release}`,
    ...(p.evr.epoch !== undefined ? [`Epoch: ${p.evr.epoch}`] : []),
    `Summary: ${p.summary}`,
    // Debian's relations, translated, are the dependencies: rpm's generators would add ELF ones on top.
    'AutoReqProv: no',
    ...p.requires.map((r) => `Requires: ${r}`),
    ...(p.requiresPosttrans ?? []).map((r) => `Requires(posttrans): ${r}`),
    ...p.provides.map((r) => `Provides: ${r}`),
    ...p.obsoletes.map((r) => `Obsoletes: ${r}`),
  ];
  const lines = [
    `Name: ${main!.name}`,
    ...header(main!),
    `License: various (${debianName} binaries)`,
    '',
    '%description',
    `vmstub test fixture: ${debianName} binaries under EL names.`,
    '',
  ];
  for (const p of subs)
    lines.push(`%package -n ${p.name}`, ...header(p), '', `%description -n ${p.name}`, p.summary, '');
  lines.push('%install', `cp -a ${tree}/. %{buildroot}/`, '');
  for (const p of packages) {
    if (p.posttrans) lines.push(p === main ? '%posttrans' : `%posttrans -n ${p.name}`, p.posttrans, '');
    lines.push(p === main ? '%files' : `%files -n ${p.name}`, '%defattr(-,root,root,-)');
    for (const d of p.dirs) lines.push(`${attr(d)}%dir ${filesEntry(d)}`);
    for (const f of p.files) lines.push(`${attr(f)}${filesEntry(f)}`);
    lines.push('');
  }
  return lines.join('\n');
}

const GRUB_PLUGIN = `#!/bin/sh
# vmstub fixture, standing for EL's grub2 kernel-install plugin where there is no boot loader to update:
# the kernel in /boot and a Boot Loader Specification entry whose options come from /etc/kernel/cmdline
# when it exists, else from the running kernel's command line, as EL's plugin takes them.
command="$1" version="$2" image="$4"
entries=/boot/loader/entries
id=$(cat /etc/machine-id 2>/dev/null)
entry="$entries/\${id:-vmstub}-$version.conf"
case "$command" in
add)
  cp -f "$image" "/boot/vmlinuz-$version"
  if [ -f /etc/kernel/cmdline ]; then options=$(cat /etc/kernel/cmdline)
  else options=$(tr ' ' '\\n' < /proc/cmdline | grep -v -e '^BOOT_IMAGE=' -e '^initrd=' | tr '\\n' ' '); fi
  . /etc/os-release
  mkdir -p "$entries"
  printf 'title %s (%s)\\nversion %s\\nlinux /boot/vmlinuz-%s\\ninitrd /boot/initramfs-%s.img\\noptions %s\\n' \\
    "$NAME" "$version" "$version" "$version" "$version" "$options" > "$entry"
  ;;
remove) rm -f "/boot/vmlinuz-$version" "$entry" ;;
esac
`;

const DRACUT_PLUGIN = `#!/bin/sh
# vmstub fixture, standing for dracut's own kernel-install plugin (Debian's dracut does not ship it):
# the initramfs in /boot, where EL keeps it when no boot loader entry directory is set up.
case "$1" in
add) exec dracut -f "/boot/initramfs-$2.img" "$2" ;;
remove) rm -f "/boot/initramfs-$2.img" ;;
esac
`;

/** EL's /etc/dnf/dnf.conf, as its dnf package ships it. */
const EL_DNF_CONF =
  '[main]\ngpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\nbest=True\nskip_if_unavailable=False\n';

export interface ElFixture {
  /** The mirror tree: the recipe's two repositories (BaseOS and AppStream on EL), each with repodata. */
  mirror: string;
  key: SigningKey;
  /** What each recipe name became, for the tests to look for. */
  kernelVersion: string;
  packageCount: number;
}

/**
 * The fixture for a recipe, built once and kept in the test cache (keyed by the Debian tree, the recipe
 * and this file): about a minute and a half on top of the tree.
 */
export function elFixture(recipe: FixtureRecipe): ElFixture {
  const d = recipe.distro;
  // rpm: what EL_REQUIRES adds must be there to be required.
  const names = [...recipe.packages, ...Object.values(EL_REQUIRES).flat()];
  const debianPackages = [...new Set(names.flatMap((n) => STANDS_FOR[n] ?? []))].sort();
  const debianSource = debianSuiteFor(d);
  const root = debianTree(debianPackages, debianSource.suite);
  const self = readFileSync(new URL(import.meta.url), 'utf8');
  const dir = join(
    testCacheDir(),
    `el-fixture-${d.id}-${digest(root, d.releasePackage, d.rpmdb.path, d.releasever, ...recipe.packages, self)}`,
  );
  const done = join(dir, 'fixture.json');
  if (existsSync(done)) return JSON.parse(readFileSync(done, 'utf8')) as ElFixture;
  // Fixtures of this recipe that an older helper built are of no more use.
  for (const old of readdirSync(testCacheDir()).filter((f) => f.startsWith(`el-fixture-${d.id}-`)))
    rmSync(join(testCacheDir(), old), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const work = join(dir, 'work');
  const tree = join(work, 'tree');
  mkdirSync(work, { recursive: true });
  sh('cp', ['-a', `${root}/.`, `${tree}/`]);

  const debian = installedPackages(root);
  const renamed = new Map<string, string>();
  for (const [el, stands] of Object.entries(STANDS_FOR)) renamed.set(stands[0]!, el);
  const kernelPackage = debian.find((p) => /^linux-image-\d/.test(p.name))!;
  const kernelVersion = kernelPackage.name.replace(/^linux-image-/, '');
  renamed.set(kernelPackage.name, 'kernel-core');
  renamed.set('libc6', 'glibc');
  const rename = (n: string) => renamed.get(n) ?? n;

  // The kernel as EL lays it out: the image, its config and map with its modules (where newer Debian
  // kernels already keep the last two).
  const moduleDir = `/usr/lib/modules/${kernelVersion}`;
  for (const [from, to] of [
    [`/boot/vmlinuz-${kernelVersion}`, `${moduleDir}/vmlinuz`],
    [`/boot/config-${kernelVersion}`, `${moduleDir}/config`],
    [`/boot/System.map-${kernelVersion}`, `${moduleDir}/System.map`],
  ] as const) {
    const files = kernelPackage.files;
    if (!existsSync(join(tree, from))) continue;
    if (existsSync(join(tree, to))) {
      rmSync(join(tree, from));
      files.splice(files.indexOf(from), 1);
    } else {
      renameSync(join(tree, from), join(tree, to));
      files[files.indexOf(from)] = to;
    }
  }

  // Files of the fixture's own, in the tree before it is walked.
  const put = (path: string, content: string, mode = 0o644) => {
    mkdirSync(dirname(join(tree, path)), { recursive: true });
    writeFileSync(join(tree, path), content);
    chmodSync(join(tree, path), mode);
  };
  const key = makeSigningKey(work, 'el-fixture');
  const major = d.releasever.replace(/-.*/, '');
  const osRelease = [
    `NAME="${d.name} (vmstub fixture: ${debianSource.name} binaries)"`,
    `VERSION="${major}"`,
    `ID="${d.vendor}"`,
    'ID_LIKE="rhel fedora"',
    `VERSION_ID="${major}"`,
    `PRETTY_NAME="${d.name} (vmstub fixture)"`,
    '',
  ].join('\n');
  const release: Record<string, string> = {
    '/usr/lib/os-release': osRelease,
    [`/etc/${d.vendor}-release`]: `${d.name} (vmstub fixture)\n`,
    [`/etc/yum.repos.d/${d.vendor}.repo`]: d.repos
      .map((r) => `[${r.id}]\nname=${d.name} ${r.id}\nbaseurl=${d.mirror}/${r.path}\ngpgcheck=1\nenabled=1\n`)
      .join('\n'),
    [`/etc/pki/rpm-gpg/RPM-GPG-KEY-${d.vendor}-fixture`]: readFileSync(key.publicKey, 'utf8'),
  };
  for (const [p, c] of Object.entries(release)) put(p, c);
  sh('ln', ['-sf', '../usr/lib/os-release', join(tree, 'etc/os-release')]);
  put('/usr/lib/kernel/install.d/20-grub.install', GRUB_PLUGIN, 0o755);
  put('/usr/lib/kernel/install.d/50-dracut.install', DRACUT_PLUGIN, 0o755);
  put('/usr/lib/rpm/macros.d/macros.dbpath', `%_dbpath ${d.rpmdb.path}\n`);
  put('/etc/dnf/dnf.conf', EL_DNF_CONF);
  // EL's setup has the wheel group, its sudoers' group (Debian's is sudo).
  sh('groupadd', ['--root', tree, '--system', 'wheel']);
  // sshd.service as EL names it: Debian's is ssh.service, with sshd.service an alias systemctl will not
  // enable; the alias and Debian's own enablement go (the plan enables sshd.service, as EL's preset does).
  const sshUnit = readFileSync(join(tree, 'usr/lib/systemd/system/ssh.service'), 'utf8');
  put('/usr/lib/systemd/system/sshd.service', sshUnit.replace(/^Alias=sshd\.service\n/m, ''));
  for (const link of [
    'etc/systemd/system/sshd.service',
    'etc/systemd/system/multi-user.target.wants/ssh.service',
  ])
    rmSync(join(tree, link), { force: true });

  // Who owns what: dpkg's lists, canonical; every other file is a maintainer script's, for setup.
  const { files: allFiles, dirs: allDirs } = walk(tree);
  const keep = (p: string) => !NEVER.some((re) => re.test(p));
  const present = new Set([...allFiles, ...allDirs]);
  const owned = new Set<string>();
  const subpackages: Subpackage[] = [];
  const extraFiles: Record<string, string[]> = {
    [d.releasePackage]: [...Object.keys(release), '/etc/os-release'],
    'grub2-common': ['/usr/lib/kernel/install.d/20-grub.install'],
    dracut: ['/usr/lib/kernel/install.d/50-dracut.install'],
    rpm: ['/usr/lib/rpm/macros.d/macros.dbpath'],
    'openssh-server': ['/usr/lib/systemd/system/sshd.service'],
  };
  const topLinks = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'].filter((l) => present.has(l));
  for (const l of [...Object.values(extraFiles).flat(), ...topLinks]) owned.add(l);
  const essential = debian.filter((p) => p.essential).map((p) => rename(p.name));
  for (const p of debian) {
    const name = rename(p.name);
    const paths = [...new Set(p.files.map(canonicalPath))].filter(
      (f) => f !== '/' && f !== '/.' && present.has(f) && keep(f) && !topLinks.includes(f),
    );
    const isDir = (f: string) => lstatSync(join(tree, f)).isDirectory();
    const files = paths.filter((f) => !isDir(f) && !owned.has(f));
    const dirs = paths.filter(isDir);
    for (const f of files) owned.add(f);
    for (const f of dirs) owned.add(f);
    const evr = debianEvr(p.version);
    const provides = [
      ...relations(p.provides).map((r) => rpmDependency(r, (n) => n)),
      ...(EL_PROVIDES[name] ?? []),
    ];
    const obsoletes: string[] = [];
    if (name !== p.name) {
      provides.push(`${p.name} = ${evrText(evr)}`);
      obsoletes.push(`${p.name} < ${evrText(evr)}`);
    }
    const requires = relations(p.depends).map((r) => rpmDependency(r, rename));
    const stands = STANDS_FOR[name];
    if (stands) requires.push(...stands.slice(1));
    requires.push(...(EL_REQUIRES[name] ?? []));
    if (name === 'glibc') requires.push('basesystem');
    subpackages.push({
      name,
      evr,
      requires,
      provides,
      obsoletes,
      files: [...files, ...(extraFiles[name] ?? [])],
      dirs,
      summary: `${debianSource.name}'s ${p.name} ${p.version}`,
      ...(name === 'kernel-core'
        ? {
            requiresPosttrans: ['/usr/bin/kernel-install', 'dracut', 'grub2-common'],
            posttrans: `/usr/bin/kernel-install add ${kernelVersion} ${moduleDir}/vmlinuz || exit $?`,
          }
        : {}),
    });
  }
  const setupFiles = allFiles.filter((f) => !owned.has(f) && keep(f) && !/^\/usr\/lib\/modules\//.test(f));
  const setupDirs = allDirs.filter((f) => !owned.has(f) && keep(f) && !topLinks.includes(f));
  const own = (name: string, o: Partial<Subpackage>): Subpackage => ({
    name,
    evr: { version: major, release: '1' },
    requires: [],
    provides: [],
    obsoletes: [],
    files: [],
    dirs: [],
    summary: `vmstub fixture ${name}`,
    ...o,
  });
  subpackages.unshift(
    own('filesystem', { files: topLinks, summary: 'the merged-/usr links' }),
    own('setup', {
      files: setupFiles,
      dirs: setupDirs,
      requires: ['filesystem'],
      summary: "what Debian's maintainer scripts made: accounts, alternatives, unit links, configuration",
    }),
    own('basesystem', { requires: ['filesystem', 'setup', ...essential] }),
    own(d.releasePackage, {
      files: extraFiles[d.releasePackage]!,
      provides: ['system-release', `system-release(releasever) = ${major}`, `${d.vendor}-release = ${major}`],
      requires: ['filesystem'],
    }),
    own('grub2-common', {
      files: extraFiles['grub2-common']!,
      evr: { epoch: 1, version: '2.06', release: '1' },
      requires: ['/usr/bin/kernel-install', 'coreutils'],
      summary: "stands for EL's grub2 kernel-install plugin",
    }),
    own('glibc-minimal-langpack', { requires: ['glibc'], summary: "C.UTF-8 is in Debian's libc-bin" }),
  );

  const top = join(work, 'rpmbuild');
  const specPath = join(work, 'fixture.spec');
  writeFileSync(specPath, specText(subpackages, tree, debianSource.name));
  sh('rpmbuild', [
    '-bb',
    '--quiet',
    '--define',
    `_topdir ${top}`,
    '--define',
    '_binary_payload w3.zstdio',
    '--define',
    '__os_install_post %{nil}',
    '--define',
    '_build_id_links none',
    '--define',
    '_unpackaged_files_terminate_build 0',
    '--define',
    '__spec_clean_body %{nil}',
    specPath,
  ]);
  const fileOf = (p: Subpackage) =>
    join(top, 'RPMS', 'x86_64', `${p.name}-${p.evr.version}-${p.evr.release}.x86_64.rpm`);
  const rpms = subpackages.map(fileOf);
  signRpms(rpms, key);
  const inAppStream = (i: number) => APPSTREAM.has(subpackages[i]!.name);
  // The recipe's first repository (BaseOS, Fedora's release) holds all but APPSTREAM's; its second
  // (AppStream, Fedora's updates) those.
  const mirror = join(dir, 'mirror');
  const [base, more] = d.repos.map((r) => join(mirror, r.path.replace('$basearch', 'x86_64')));
  makeRepo(
    base!,
    rpms.filter((_, i) => !inAppStream(i)),
  );
  makeRepo(
    more!,
    rpms.filter((_, i) => inAppStream(i)),
  );
  rmSync(tree, { recursive: true, force: true });
  rmSync(join(top, 'BUILDROOT'), { recursive: true, force: true });
  const fixture: ElFixture = { mirror, key, kernelVersion, packageCount: rpms.length };
  writeFileSync(done, JSON.stringify(fixture));
  return fixture;
}
