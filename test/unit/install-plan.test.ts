import assert from 'node:assert/strict';
import { CATALOG } from '../../src/catalog/index.js';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DEB_DISTROS } from '../../src/catalog/deb.js';
import { buildPlan, debPackages, formatPlan, type Action } from '../../src/installer/plan/index.js';
import { aptSources, fstab, localeGenLine, mkfsArgv, sshdConf } from '../../src/installer/render.js';
import { readSpecFile, resolveSpec, type SpecInput } from '../../src/installer/spec.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2hc8Jz6qs6v0DrzFkq0CrWp9ncQ4cWwBFUe9VtbCHn test@host';
const defaults = { hostname: 'web1', timezone: 'Europe/Berlin', sshKeys: [KEY], arch: 'x86_64' as const };
const SNAPSHOTS = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'test',
  'fixtures',
  'snapshots',
);

/** Compares with the committed snapshot; UPDATE_SNAPSHOTS=1 writes it instead. */
function snapshot(name: string, actual: string): void {
  const file = join(SNAPSHOTS, name);
  if (process.env.UPDATE_SNAPSHOTS || !existsSync(file)) {
    mkdirSync(SNAPSHOTS, { recursive: true });
    writeFileSync(file, actual);
    if (!process.env.UPDATE_SNAPSHOTS)
      assert.fail(`snapshot ${name} did not exist; it was written: review and commit it`);
    return;
  }
  assert.equal(
    actual,
    readFileSync(file, 'utf8'),
    `${name} differs from the snapshot (UPDATE_SNAPSHOTS=1 to accept)`,
  );
}

for (const d of CATALOG) {
  test(`plan snapshot: ${d.id}`, () => {
    const spec = resolveSpec(
      { distro: d.id, users: [{ name: 'alice', sudo: true, sshKeys: [KEY] }], locale: 'en_US.UTF-8' },
      defaults,
    );
    snapshot(`${d.id}.plan.txt`, formatPlan(buildPlan(spec), true));
  });
}

test('plan snapshot: debootstrap, btrfs, wipe, proxy, keyring, post-install, a root password hash', () => {
  const spec = resolveSpec(
    {
      distro: 'debian13',
      bootstrap: 'debootstrap',
      filesystem: 'btrfs',
      wipe: true,
      proxy: 'http://10.0.2.2:3142',
      keyring: '/run/fixture/keyring.gpg',
      mirror: 'http://10.0.2.2:8080/debian',
      keyboard: 'de',
      root: {
        passwordHash:
          '$6$saltsalt$6Ys3P.7W0gdaeQbS7KPkh3XU2b3j3RcM.9kmeAHu2fRtxhcEYpyJbO7Yq4tS.CUgJFpOS3WSzMDHIMkDx8p1b0',
      },
      postInstall: ['echo built by vmstub > /etc/motd'],
      packages: ['htop'],
    },
    defaults,
  );
  snapshot('debian13-options.plan.txt', formatPlan(buildPlan(spec), true));
});

test('every step of every deb plan has actions, ids are unique, and the disk is checked before mkfs', () => {
  for (const d of DEB_DISTROS) {
    const plan = buildPlan(resolveSpec({ distro: d.id }, defaults));
    const ids = plan.steps.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, d.id);
    for (const s of plan.steps) assert.ok(s.actions.length > 0, `${d.id}/${s.id}`);
    const format = plan.steps[0]!.actions;
    assert.equal(format[0]!.kind, 'check-blank');
    assert.ok(format.some((a: Action) => a.kind === 'exec' && a.argv[0]!.startsWith('mkfs.')));
    assert.equal(ids.at(-1), 'verify');
  }
});

test('a share target makes no filesystem and refuses a non-empty share', () => {
  const plan = buildPlan(resolveSpec({ distro: 'debian12', target: 'share' }, defaults));
  const kinds = plan.steps.flatMap((s) => s.actions.map((a) => a.kind));
  assert.ok(!plan.steps.some((s) => s.id === 'format'));
  assert.ok(kinds.includes('check-empty-target'));
});

test('sources: release, updates and security; Ubuntu on ports for arm64; no foreign components', () => {
  const [debian12, , , , ubuntu2404] = DEB_DISTROS;
  const deb = aptSources(debian12!, resolveSpec({ distro: 'debian12' }, defaults));
  assert.match(deb, /Suites: bookworm bookworm-updates\nComponents: main\n/);
  assert.match(deb, /URIs: http:\/\/deb\.debian\.org\/debian-security\nSuites: bookworm-security\n/);
  assert.doesNotMatch(deb, /universe/);
  const arm = aptSources(ubuntu2404!, resolveSpec({ distro: 'ubuntu2404', arch: 'aarch64' }, defaults));
  assert.match(
    arm,
    /URIs: http:\/\/ports\.ubuntu\.com\/ubuntu-ports\nSuites: noble noble-updates\nComponents: main universe\n/,
  );
  assert.match(arm, /URIs: http:\/\/ports\.ubuntu\.com\/ubuntu-ports\nSuites: noble-security\n/);
  assert.doesNotMatch(arm, /archive\.ubuntu\.com/);
});

test('mkfs matches the release kernel', () => {
  assert.deepEqual(mkfsArgv('xfs', '5.4', '/dev/x', false), [
    'mkfs.xfs',
    '-q',
    '-c',
    'options=/usr/share/xfsprogs/mkfs/lts_5.4.conf',
    '/dev/x',
  ]);
  assert.deepEqual(mkfsArgv('xfs', '6.8', '/dev/x', true), [
    'mkfs.xfs',
    '-q',
    '-f',
    '-c',
    'options=/usr/share/xfsprogs/mkfs/lts_6.6.conf',
    '/dev/x',
  ]);
  assert.deepEqual(
    mkfsArgv('xfs', '6.17', '/dev/x', false).at(-2),
    'options=/usr/share/xfsprogs/mkfs/lts_6.12.conf',
  );
  assert.deepEqual(mkfsArgv('ext4', '5.4', '/dev/x', false), [
    'mkfs.ext4',
    '-q',
    '-O',
    '^orphan_file',
    '/dev/x',
  ]);
  assert.deepEqual(mkfsArgv('ext4', '6.1', '/dev/x', true), ['mkfs.ext4', '-q', '-F', '/dev/x']);
  assert.throws(() => mkfsArgv('xfs', '3.10', '/dev/x', false), /no XFS feature set for kernel 3\.10/);
});

test('renderers: fstab passes, locale lines, sshd passwords only when a hash exists', () => {
  assert.match(fstab('u-1', 'ext4', true), /^UUID=u-1 \/ ext4 defaults,x-systemd\.growfs 0 1$/m);
  assert.match(fstab('u-1', 'xfs', true), /^UUID=u-1 \/ xfs defaults,x-systemd\.growfs 0 0$/m);
  assert.match(fstab('u-1', 'xfs', false), /^UUID=u-1 \/ xfs defaults 0 0$/m);
  assert.equal(localeGenLine('C.UTF-8'), undefined);
  assert.equal(localeGenLine('de_DE.utf8'), 'de_DE.UTF-8 UTF-8\n');
  assert.match(sshdConf(resolveSpec({ distro: 'debian12' }, defaults)), /PasswordAuthentication no/);
  assert.match(
    sshdConf(
      resolveSpec({ distro: 'debian12', users: [{ name: 'bob', passwordHash: '$y$j9T$abc$def' }] }, defaults),
    ),
    /PasswordAuthentication yes/,
  );
  const pkgs = debPackages(
    DEB_DISTROS[0]!,
    resolveSpec({ distro: 'debian12', packages: ['htop', 'sudo'] }, defaults),
  );
  assert.deepEqual(pkgs, [...pkgs].sort());
  assert.equal(pkgs.filter((p) => p === 'sudo').length, 1);
  assert.ok(pkgs.includes('linux-image-cloud-amd64') && pkgs.includes('htop'));
});

test('spec validation: one clear line naming the field', () => {
  const bad: [SpecInput, RegExp][] = [
    [{}, /distro is required/],
    [{ distro: 'windows11' }, /unknown distribution 'windows11'/],
    [{ distro: 'centos6', arch: 'aarch64' }, /CentOS 6\.10 is not available for aarch64/],
    [{ distro: 'debian12', arch: 'riscv64' }, /Debian 12 \(bookworm\) is not available for riscv64/],
    [{ distro: 'debian12', hostname: 'bad_host' }, /hostname: 'bad_host' is not a valid host name/],
    [{ distro: 'debian12', timezone: 'Mars/Base' + ' x' }, /is not a time zone name/],
    [{ distro: 'debian12', locale: 'klingon' }, /locale: 'klingon' is not a locale/],
    [{ distro: 'debian12', filesystem: 'zfs' as never }, /filesystem: 'zfs' is not one of xfs, btrfs, ext4/],
    [{ distro: 'debian12', mirror: 'ftp://x' }, /mirror: 'ftp:\/\/x' is not an http\(s\) or file URL/],
    [{ distro: 'debian12', root: { passwordHash: 'hunter2' } }, /plain passwords are refused/],
    [
      { distro: 'debian12', root: { sshKeys: ['not a key'] } },
      /root\.sshKeys\[0\]: is not an SSH public key/,
    ],
    [
      { distro: 'debian12', users: [{ name: 'Bad Name' }] },
      /users\[0\]\.name: 'Bad Name' is not a valid user name/,
    ],
    [{ distro: 'debian12', users: [{ name: 'a' }, { name: 'a' }] }, /'a' is listed twice/],
    [{ distro: 'debian12', users: [{ name: 'root' }] }, /root is configured under 'root:'/],
    [{ distro: 'debian12', packages: ['bad pkg'] }, /packages\[0\]: 'bad pkg' is not a package name/],
    [
      { distro: 'debian12', packages: ['less', 'app-editors/vim'] },
      /packages\[1\]: 'app-editors\/vim': category\/name is Gentoo's form; Debian 12 \(bookworm\) takes the package's name/,
    ],
    [{ distro: 'debian12', colour: 'blue' } as SpecInput, /unknown field 'colour'/],
  ];
  for (const [input, re] of bad)
    assert.throws(() => resolveSpec(input, defaults, 'web.yaml'), re, JSON.stringify(input));
});

test("Gentoo's packages may be category/name atoms, as emerge takes them", () => {
  const s = resolveSpec({ distro: 'gentoo', packages: ['app-editors/vim', 'less'] }, defaults);
  assert.deepEqual(s.packages, ['app-editors/vim', 'less']);
});

test('spec defaults: the host name, time zone and keys given; root locked; C.UTF-8; xfs; mmdebstrap', () => {
  const s = resolveSpec({ distro: 'debian12' }, defaults);
  assert.equal(s.hostname, 'web1');
  assert.equal(s.timezone, 'Europe/Berlin');
  assert.deepEqual(s.root, { passwordHash: undefined, sshKeys: [KEY] });
  assert.equal(s.locale, 'C.UTF-8');
  assert.equal(s.filesystem, 'xfs');
  assert.equal(s.bootstrap, 'mmdebstrap');
  assert.equal(s.wipe, false);
});

test('spec files: YAML in, a clear line for what cannot be read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'spec-'));
  writeFileSync(
    join(dir, 'ok.yaml'),
    'distro: debian12\nhostname: db1\nusers:\n  - name: alice\n    sudo: true\n',
  );
  assert.deepEqual(readSpecFile(join(dir, 'ok.yaml')).input, {
    distro: 'debian12',
    hostname: 'db1',
    users: [{ name: 'alice', sudo: true }],
  });
  writeFileSync(join(dir, 'bad.yaml'), 'distro: [unclosed\n');
  assert.throws(() => readSpecFile(join(dir, 'bad.yaml')), /bad\.yaml is not valid YAML/);
  writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
  assert.throws(() => readSpecFile(join(dir, 'list.yaml')), /must be a mapping/);
  assert.throws(() => readSpecFile(join(dir, 'missing.yaml')), /cannot read .*missing\.yaml: ENOENT/);
});

test('the second pass in each package manager’s own words: yum, dnf and dnf5', () => {
  const argvOf = (id: string) => {
    const plan = buildPlan(resolveSpec({ distro: id, locale: 'en_US.UTF-8' }, defaults));
    const action = plan.steps.find((s) => s.id === 'packages')!.actions[0]!;
    assert.ok(
      action.kind === 'exec' && action.chroot,
      `${id}: the target's own package manager, in the chroot`,
    );
    return action.argv;
  };
  for (const [id, tool] of [
    ['centos6', 'yum'],
    ['centos7', 'yum'],
    ['centos8stream', 'dnf'],
    ['centos9stream', 'dnf'],
    ['centos10stream', 'dnf'],
    ['fedora42', 'dnf5'],
  ] as const) {
    const argv = argvOf(id);
    assert.equal(argv[0], tool, id);
    assert.ok(argv.includes('-y') && argv.includes('install'), id);
    if (tool === 'yum') {
      // yum has no --repo and no weak dependencies: every other repository off, vmstub's on.
      assert.deepEqual(argv.slice(3, 5), ['--disablerepo=*', '--enablerepo=vmstub-*'], id);
      assert.ok(!argv.some((a) => a.includes('install_weak_deps')), id);
    } else {
      assert.ok(argv.includes('--repo=vmstub-*'), id);
      assert.ok(argv.includes('--setopt=install_weak_deps=False'), id);
    }
  }
});

test('plan snapshot: an encrypted ext4 root (LUKS2 with a label, crypttab and the key script staged)', () => {
  const spec = resolveSpec({ distro: 'debian12', filesystem: 'ext4', encrypt: true }, defaults);
  const plan = buildPlan(spec);
  snapshot('debian12-encrypted.plan.txt', formatPlan(plan, true));
  const actions = plan.steps.flatMap((s) => s.actions);
  const at = (kind: Action['kind']) => actions.findIndex((a) => a.kind === kind);
  const mkfs = actions.findIndex((a) => a.kind === 'exec' && a.argv[0] === 'mkfs.ext4');
  assert.ok(at('luks-format') >= 0 && at('luks-format') < mkfs, 'the container before the filesystem');
  assert.equal((actions[mkfs] as Extract<Action, { kind: 'exec' }>).argv.at(-1), '/dev/mapper/vmstub-root');
  assert.deepEqual(actions[at('mount')], {
    kind: 'mount',
    source: '/dev/mapper/vmstub-root',
    fstype: 'ext4',
  });
  // Staged before the bootstrap, so the kernel package's own initramfs can open the root: the same
  // crypttab in every system (by label), and no initramfs made again in the stub.
  const staged = plan.steps.find((s) => s.id === 'prepare')!.actions;
  assert.ok(
    staged.some(
      (a) =>
        a.kind === 'write' &&
        a.in === 'staging' &&
        a.path === '/etc/crypttab' &&
        /^vmstub-root LABEL=vmstub-root none luks,.*keyscript=\/usr\/lib\/vmstub\/luks-key$/m.test(a.content),
    ),
  );
  assert.ok(
    staged.some((a) => a.kind === 'write' && a.path === '/usr/lib/vmstub/luks-key' && a.mode === 0o755),
  );
  assert.doesNotMatch(JSON.stringify(actions), /update-initramfs/);
  assert.ok(debPackages(DEB_DISTROS[0]!, spec).includes('cryptsetup-initramfs'));
  assert.ok(!debPackages(DEB_DISTROS[0]!, { ...spec, encrypt: false }).includes('cryptsetup-initramfs'));
});

test("a clone's plan: an encrypted root's key slot changed before it is mounted; a plain one mounted as it is", () => {
  const mountStep = (encrypt: boolean) =>
    buildPlan({
      ...resolveSpec({ distro: 'debian12', filesystem: 'ext4', encrypt }, defaults),
      renewIdentity: true,
    }).steps[0]!;
  assert.deepEqual(mountStep(true).actions, [
    { kind: 'luks-rekey', device: '/dev/disk/by-id/virtio-data' },
    { kind: 'mount', source: '/dev/mapper/vmstub-root', fstype: 'ext4' },
  ]);
  assert.deepEqual(mountStep(false).actions, [
    { kind: 'mount', source: '/dev/disk/by-id/virtio-data', fstype: 'ext4' },
  ]);
  const described = formatPlan(
    {
      ...buildPlan({ ...resolveSpec({ distro: 'debian12', encrypt: true }, defaults), renewIdentity: true }),
    },
    true,
  );
  assert.match(
    described,
    /cryptsetup luksChangeKey --pbkdf=argon2id --pbkdf-memory=262144 --iter-time=1000 --key-file=\(the source's passphrase, from fw_cfg\)/,
  );
});

test('an encrypted root is refused where vmstub cannot unlock it, and its options without it', () => {
  const refused = (input: SpecInput) => {
    try {
      resolveSpec(input, defaults);
    } catch (e) {
      return (e as Error).message;
    }
    return assert.fail('accepted');
  };
  assert.match(
    refused({ distro: 'centos9stream', encrypt: true }),
    /encrypt: .*dracut.*Debian and Ubuntu are/,
  );
  assert.match(refused({ distro: 'gentoo', encrypt: true }), /encrypt: .*Gentoo's/);
  assert.match(refused({ distro: 'debian12', unlock: 'console' }), /unlock: is for an encrypted root/);
  assert.match(refused({ distro: 'debian12', keyFile: 'k' }), /keyFile: is for an encrypted root/);
  assert.match(refused({ distro: 'debian12', encrypt: true, unlock: 'tpm' as 'host' }), /unlock/);
});
