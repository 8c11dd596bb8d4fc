import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  bootstrapPackages,
  currentSnapshot,
  explainStages,
  imageRootActions,
  planStages,
} from '../../src/image/build.js';
import { imageJsonSchema, packagesFor, readImageConfig } from '../../src/image/config.js';
import { foreignArchProblem } from '../../src/image/foreign-arch.js';
import { changedInputs, StageCache } from '../../src/image/stage-cache.js';
import { MACHINE_IDENTITY_FILES } from '../../src/installer/plan/common.js';
import { buildPlan } from '../../src/installer/plan/index.js';
import { resolveSpec } from '../../src/installer/spec.js';
import { VmstubError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vmstub-image-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problems(path: string): string {
  try {
    readImageConfig(path, 'x86_64');
  } catch (e) {
    assert.ok(e instanceof VmstubError);
    assert.equal(e.exitCode, 2);
    return e.message;
  }
  assert.fail('the config was accepted');
}

const hook = file('hook.sh', '#!/bin/sh\n');
chmodSync(hook, 0o755);

test('a small config: every default filled in, the hook relative to the file', () => {
  const c = readImageConfig(file('web.yaml', 'name: web\ndistro: debian12\nhook: hook.sh\n'), 'x86_64');
  assert.equal(c.distro.id, 'debian12');
  assert.equal(c.arch, 'x86_64');
  assert.equal(c.hostname, 'web');
  assert.equal(c.kernel, 'linux-image-cloud-amd64');
  assert.equal(c.hook, hook);
  assert.deepEqual(c.formats, ['squashfs']);
  assert.equal(c.recommends, false);
  assert.deepEqual(c.root, { passwordHash: undefined, sshKeys: [] });
  assert.equal(c.mirror, 'http://deb.debian.org/debian');
  assert.equal(c.securityMirror, 'http://deb.debian.org/debian-security');
  assert.equal(c.finalMirror, 'http://deb.debian.org/debian');
});

test("an ISO's default kernel is the distribution's general one: the VM kernel has no SATA or USB storage driver", () => {
  const iso = (arch: string, distro = 'debian12') =>
    readImageConfig(
      file(`iso-${distro}-${arch}.yaml`, `name: l\ndistro: ${distro}\nformats: [iso]\n`),
      arch as 'x86_64',
    ).kernel;
  assert.equal(iso('x86_64'), 'linux-image-amd64');
  assert.equal(iso('aarch64'), 'linux-image-arm64');
  assert.equal(iso('x86_64', 'ubuntu2404'), 'linux-image-generic');
  const chosen = readImageConfig(
    file('iso-own.yaml', 'name: l\ndistro: debian12\nformats: [iso]\nkernel: linux-image-rt-amd64\n'),
    'x86_64',
  );
  assert.equal(chosen.kernel, 'linux-image-rt-amd64', "the config's own kernel still wins");
});

test('a build mirror is used for security updates too, and the final mirror stays the official one', () => {
  const c = readImageConfig(
    file('m.yaml', 'name: m\ndistro: debian12\nmirror: http://127.0.0.1:3142/debian/\n'),
    'x86_64',
  );
  assert.equal(c.mirror, 'http://127.0.0.1:3142/debian');
  assert.equal(c.securityMirror, 'http://127.0.0.1:3142/debian');
  assert.equal(c.finalMirror, 'http://deb.debian.org/debian');
  assert.equal(c.finalSecurityMirror, 'http://deb.debian.org/debian-security');
});

test('every problem in a config at once, in file order, with its line', () => {
  const message = problems(
    file(
      'bad.yaml',
      [
        'name: Web Server',
        'distro: debian12',
        'packages: [vim, "no such"]',
        'hook: missing.sh',
        'users:',
        '  - name: alice',
        '  - name: alice',
        'formats: [squashfs, dvd]',
        'colour: blue',
        '',
      ].join('\n'),
    ),
  );
  assert.match(message, /bad\.yaml: 6 problems: /);
  const order = [
    /name: 'Web Server' is not a valid image name.*\(line 1\)/,
    /packages\[1\]: 'no such' is not a package name \(with an optional \[arch \.\.\.\] or \[!arch \.\.\.\]\) \(line 3\)/,
    /hook: \S+missing\.sh not found \(line 4\)/,
    /users\[1\]\.name: 'alice' is listed twice \(line 7\)/,
    /formats\[1\]: 'dvd' is not one of squashfs, system, iso \(line 8\)/,
    /colour: unknown field 'colour' \(line 9\)/,
  ];
  let at = 0;
  for (const re of order) {
    const m = re.exec(message.slice(at));
    assert.ok(m, `${re} after position ${at} in: ${message}`);
    at += m.index + m[0].length;
  }
});

test("packages limited to architectures, by our names or Debian's", () => {
  const list = ['vim', 'kexec-tools [!riscv64]', 'grub-efi-arm64-bin [arm64]', 'shim [x86_64 aarch64]'];
  assert.deepEqual(packagesFor(list, 'x86_64'), ['vim', 'kexec-tools', 'shim']);
  assert.deepEqual(packagesFor(list, 'aarch64'), ['vim', 'kexec-tools', 'grub-efi-arm64-bin', 'shim']);
  assert.deepEqual(packagesFor(list, 'riscv64'), ['vim']);
  assert.throws(() => packagesFor(['ab [x86_64 !riscv64]'], 'x86_64'), /all \[a b\] or all \[!a !b\]/);
  const config = readImageConfig(
    file(
      'arches.yaml',
      'name: a\ndistro: debian13\narch: riscv64\npackages: [vim, "kexec-tools [!riscv64]"]\n',
    ),
    'x86_64',
  );
  assert.deepEqual(config.packages, ['vim']);
  assert.match(
    problems(file('badarch.yaml', 'name: b\ndistro: debian13\npackages: [vim, "kexec-tools [!mips]"]\n')),
    /packages\[1\]: unknown architecture 'mips' \(x86_64, aarch64, riscv64\) \(line 3\)/,
  );
});

test('what cannot be built is refused with the reason', () => {
  assert.match(
    problems(file('r.yaml', 'name: r\ndistro: rocky8\narch: aarch64\n')),
    /arch: an image of Rocky Linux 8 is built for this machine's architecture \(x86_64\) only so far/,
  );
  assert.match(
    problems(file('atom.yaml', 'name: a\ndistro: rocky8\npackages: [less, app-editors/vim]\n')),
    /packages\[1\]: 'app-editors\/vim': category\/name is Gentoo's form; Rocky Linux 8 takes the package's name \(line 3\)/,
  );
  assert.deepEqual(
    readImageConfig(
      file('gatom.yaml', 'name: g\ndistro: gentoo\npackages: [app-editors/vim, less]\n'),
      'x86_64',
    ).packages,
    ['app-editors/vim', 'less'],
  );
  assert.match(
    problems(file('k.yaml', 'name: k\ndistro: rocky8\nkeyring: nosuch.gpg\n')),
    /keyring: .*nosuch\.gpg not found/,
  );
  assert.match(problems(file('u.yaml', 'name: u\ndistro: nosuch\n')), /unknown distribution 'nosuch'/);
  assert.match(problems(file('n.yaml', 'distro: debian12\n')), /name: name is required/);
  assert.match(
    problems(file('a.yaml', 'name: a\ndistro: debian13\narch: riscv64\nformats: [iso]\n')),
    /iso: no riscv64 ISOs \(vmstub makes them for x86_64 and aarch64\)/,
  );
  assert.doesNotMatch(
    problems(file('b.yaml', 'name: b\ndistro: debian12\narch: aarch64\nformats: [iso]\nhook: nosuch.sh\n')),
    /iso/,
  );
  const plain = file('plain.sh', '#!/bin/sh\n');
  chmodSync(plain, 0o644);
  assert.match(problems(file('x.yaml', 'name: x\ndistro: debian12\nhook: plain.sh\n')), /is not executable/);
  assert.match(
    problems(file('p.yaml', 'name: p\ndistro: debian12\nusers: [{name: bob, passwordHash: secret}]\n')),
    /plain passwords are refused/,
  );
});

test('files, docs, cmdline and compressionLevel: checked, and where each one reaches', () => {
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'motd'), 'hello\n');
  const c = readImageConfig(
    file(
      'extra.yaml',
      'name: e\ndistro: debian12\npackages: [less]\nfiles: tree\ndocs: false\ncmdline: quiet\ncompressionLevel: 19\nformats: [iso]\n',
    ),
    'x86_64',
  );
  assert.equal(c.files, tree);
  assert.equal(c.docs, false);
  assert.equal(c.cmdline, 'quiet');
  assert.equal(c.compressionLevel, 19);
  const keys = (x: typeof c) =>
    Object.fromEntries(planStages(x, { s: 'd' }, null).map((s) => [s.name, s.key]));
  const before = keys(c);
  const differs = (after: Record<string, string>) =>
    Object.keys(before).filter((k) => before[k] !== after[k]);
  writeFileSync(join(tree, 'etc', 'motd'), 'changed\n');
  assert.deepEqual(differs(keys(c)), ['root', 'iso'], "the files' content");
  writeFileSync(join(tree, 'etc', 'motd'), 'hello\n');
  assert.deepEqual(
    differs(keys({ ...c, docs: true })),
    ['bootstrap', 'packages', 'root', 'iso'],
    'docs (dpkg rules, from the bootstrap on)',
  );
  assert.deepEqual(differs(keys({ ...c, cmdline: '' })), ['root', 'iso']);
  assert.deepEqual(differs(keys({ ...c, compressionLevel: undefined })), ['root', 'iso']);

  const message = problems(
    file(
      'extra-bad.yaml',
      'name: e\ndistro: debian12\nfiles: nowhere\ncmdline: "a\\nb"\ncompression: xz\ncompressionLevel: 19\n',
    ),
  );
  assert.match(message, /: 3 problems: /);
  assert.match(message, /files: \S+nowhere is not a directory \(line 3\)/);
  assert.match(message, /cmdline: the kernel command line is one line \(line 4\)/);
  assert.match(
    message,
    /compressionLevel: mksquashfs takes a level for zstd only \(compression is xz\) \(line 6\)/,
  );
  assert.match(
    problems(file('lvl.yaml', 'name: l\ndistro: debian12\ncompressionLevel: 30\n')),
    /compressionLevel: .*1 to 22/,
  );
});

test('flags replace the file: a problem a flag caused names the flag', () => {
  const path = file('f.yaml', 'name: f\ndistro: debian12\n');
  assert.equal(readImageConfig(path, 'x86_64', { arch: 'aarch64' }).arch, 'aarch64');
  assert.throws(() => readImageConfig(path, 'x86_64', { mirror: 'ftp://x' }), /mirror: .*\(--mirror\)/);
});

test('the JSON Schema: every field, the required ones, the formats from the same list', () => {
  const schema = imageJsonSchema() as {
    properties: Record<string, { description?: string; items?: { enum?: string[] } }>;
    required: string[];
  };
  assert.deepEqual(schema.required.sort(), ['distro', 'name']);
  assert.deepEqual(schema.properties.formats?.items?.enum, ['squashfs', 'system', 'iso']);
  assert.match(schema.properties.recommends?.description ?? '', /default: false/);
});

test('changed inputs, as --explain says them', () => {
  assert.deepEqual(changedInputs({ a: 1, b: 'x', c: [1, 2] }, { a: 2, b: 'x', c: [2, 3] }), [
    'a: 1 -> 2',
    'c: +3 -1',
  ]);
  assert.deepEqual(changedInputs({ hook: 'a'.repeat(64) }, { hook: 'b'.repeat(64) }), ['hook changed']);
  assert.deepEqual(changedInputs({ n: 1 }, { n: 1, m: true }), ['m: none -> true']);
});

test('stage keys chain: a change reaches its own stage and every later one, never an earlier one', () => {
  const base = readImageConfig(
    file('k.yaml', 'name: k\ndistro: debian12\npackages: [less]\nhook: hook.sh\nformats: [iso]\n'),
    'x86_64',
  );
  const keys = (c: typeof base) =>
    Object.fromEntries(planStages(c, { s: 'd' }, null).map((s) => [s.name, s.key]));
  const before = keys(base);
  const differs = (after: Record<string, string>) =>
    Object.keys(before).filter((k) => before[k] !== after[k]);

  writeFileSync(hook, '#!/bin/sh\necho changed\n');
  assert.deepEqual(differs(keys(base)), ['root', 'iso'], 'the hook (by its content)');
  writeFileSync(hook, '#!/bin/sh\n');
  assert.deepEqual(differs(keys({ ...base, packages: ['less', 'vim'] })), ['packages', 'root', 'iso']);
  assert.deepEqual(differs(keys({ ...base, hostname: 'other' })), ['root', 'iso']);
  assert.deepEqual(
    differs(Object.fromEntries(planStages(base, { s: 'newer' }, null).map((s) => [s.name, s.key]))),
    ['bootstrap', 'packages', 'root', 'iso'],
    'a newer archive',
  );
  assert.ok(bootstrapPackages(base).includes('dracut-live'), 'an ISO boots with dracut');
  assert.ok(!bootstrapPackages({ ...base, formats: ['system'] }).includes('dracut'));
});

test('without packages the packages stage is not needed and the root starts from the bootstrap', () => {
  const c = readImageConfig(file('np.yaml', 'name: np\ndistro: debian12\n'), 'x86_64');
  const stages = planStages(c, { s: 'd' }, null);
  const bootstrap = stages.find((s) => s.name === 'bootstrap')!;
  assert.equal(stages.find((s) => s.name === 'packages')!.skip, true);
  assert.equal(stages.find((s) => s.name === 'root')!.inputs.from, bootstrap.key);
  const reports = explainStages(stages, new StageCache(join(dir, 'empty-cache')));
  assert.deepEqual(
    reports.map((r) => [r.name, r.hit, r.skipped === true]),
    [
      ['bootstrap', false, false],
      ['packages', true, true],
      ['root', false, false],
      ['iso', true, true],
    ],
  );
});

test('a foreign architecture needs binfmt_misc with qemu registered, enabled, with the F flag', (t) => {
  const binfmt = mkdtempSync(join(tmpdir(), 'binfmt-'));
  t.after(() => rmSync(binfmt, { recursive: true, force: true }));
  assert.equal(foreignArchProblem('x86_64', 'x86_64', binfmt), undefined);
  assert.match(foreignArchProblem('aarch64', 'x86_64', binfmt) ?? '', /binfmt_misc, which is not mounted/);
  writeFileSync(join(binfmt, 'status'), 'enabled\n');
  assert.match(foreignArchProblem('aarch64', 'x86_64', binfmt) ?? '', /install Debian's qemu-user-static/);
  const entry = (flags: string, state = 'enabled') =>
    writeFileSync(
      join(binfmt, 'qemu-aarch64'),
      `${state}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: ${flags}\noffset 0\n`,
    );
  entry('OCP');
  assert.match(foreignArchProblem('aarch64', 'x86_64', binfmt) ?? '', /lacks the F flag/);
  entry('OCF', 'disabled');
  assert.match(foreignArchProblem('aarch64', 'x86_64', binfmt) ?? '', /is disabled/);
  entry('POCF');
  assert.equal(foreignArchProblem('aarch64', 'x86_64', binfmt), undefined);
});

test('offline, the stages are keyed by the mirror state of the newest cached bootstrap, so what is cached hits', async () => {
  // Port 9 (discard) on loopback: nothing listens, the mirror is unreachable at once.
  const c = readImageConfig(
    file('off.yaml', 'name: off\ndistro: debian12\nmirror: http://127.0.0.1:9/debian\n'),
    'x86_64',
  );
  const cache = new StageCache(join(dir, 'offline-cache'));
  const notes: string[] = [];
  await assert.rejects(
    currentSnapshot(c, cache, (l) => notes.push(l)),
    /cannot reach http:\/\/127\.0\.0\.1:9\/debian .* no bootstrap of it is cached/,
  );
  const then = { 'http://127.0.0.1:9/debian bookworm': 'Sat, 08 Nov 2026 10:11:12 UTC' };
  const bootstrap = planStages(c, then, null)[0]!;
  await cache.build(bootstrap.cacheName, bootstrap.key, async () => {}, 2, { inputs: bootstrap.inputs });
  assert.deepEqual(await currentSnapshot(c, cache, (l) => notes.push(l)), then);
  assert.match(
    notes.join('\n'),
    /cannot reach http:\/\/127\.0\.0\.1:9\/debian: using the mirror state of the cached bootstrap/,
  );
  assert.equal(explainStages(planStages(c, then, null), cache)[0]!.hit, true);
  for (const distro of ['centos9stream', 'gentoo']) {
    const other = readImageConfig(
      file(`off-${distro}.yaml`, `name: off\ndistro: ${distro}\nmirror: http://127.0.0.1:9/m\n`),
      'x86_64',
    );
    await assert.rejects(
      currentSnapshot(other, cache, () => {}),
      /^VmstubError: cannot reach http:\/\/127\.0\.0\.1:9\/m \(its index files\) to build off, and no bootstrap of it is cached$/,
    );
  }
});

test('a riscv64 image without an ISO plans its stages (the skipped ISO stage asks for no ISO platform)', () => {
  const c = readImageConfig(
    file('rv.yaml', 'name: rv\ndistro: debian13\narch: riscv64\nformats: [squashfs]\n'),
    'x86_64',
  );
  const stages = planStages(c, { s: 'd' }, null);
  assert.equal(stages.find((s) => s.name === 'iso')!.skip, true);
  assert.deepEqual(stages.find((s) => s.name === 'iso')!.inputs.tools, []);
});

for (const distro of ['debian12', 'centos9stream', 'gentoo'])
  test(`${distro}: an image and an installed system of the same users and name get the same accounts, name, network and identity actions`, () => {
    const key =
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBd1n7MnQ7kSx8yJ2B0wb0CyY1sWXh2iQ8m0mVtVdxHq alice@laptop';
    const c = readImageConfig(
      file(
        'same.yaml',
        [
          'name: same',
          `distro: ${distro}`,
          'users:',
          '  - name: alice',
          '    sudo: true',
          '    groups: [adm, builders]',
          `    sshKeys: ['${key}']`,
          '  - name: bob',
          "    passwordHash: '$y$j9T$abc$def'",
          'root:',
          `  sshKeys: ['${key}']`,
          '',
        ].join('\n'),
      ),
      'x86_64',
    );
    const spec = resolveSpec(
      {
        distro,
        hostname: 'same',
        users: [
          { name: 'alice', sudo: true, groups: ['adm', 'builders'], sshKeys: [key] },
          { name: 'bob', passwordHash: '$y$j9T$abc$def' },
        ],
        root: { sshKeys: [key] },
      },
      { hostname: 'same', timezone: 'UTC', sshKeys: [], arch: 'x86_64' },
    );
    const image = imageRootActions(c, true).map((a) => JSON.stringify(a));
    const plan = buildPlan(spec);
    const step = (id: string) => plan.steps.find((s) => s.id === id)!.actions.map((a) => JSON.stringify(a));
    const installed = [
      ...step('accounts'),
      ...step('network'),
      ...step('system').filter((a) => /"\/etc\/(hostname|hosts|machine-id)"/.test(a)),
    ];
    const missing = installed.filter((a) => !image.includes(a));
    assert.deepEqual(missing, [], 'every action of the installed system is the image’s too');
    assert.ok(
      image.some((a) => a.includes('"owner":"alice"')),
      "alice's keys owned by alice, not chown -R",
    );
    for (const path of MACHINE_IDENTITY_FILES)
      assert.ok(image.includes(JSON.stringify({ kind: 'remove', path })), `${path} is removed`);
  });

test("a Gentoo image: the binary kernel, Gentoo's atoms for the live ISO and the initramfs, its mirror", () => {
  const c = readImageConfig(file('gentoo.yaml', 'name: g\ndistro: gentoo\nformats: [iso]\n'), 'x86_64');
  assert.equal(c.kernel, 'sys-kernel/gentoo-kernel-bin');
  assert.equal(c.finalMirror, c.distro.mirror);
  assert.deepEqual(bootstrapPackages(c), [
    'app-arch/zstd',
    'sys-apps/kmod',
    'sys-kernel/dracut',
    'sys-kernel/gentoo-kernel-bin',
  ]);
  const actions = imageRootActions(c, true).map((a) => JSON.stringify(a));
  assert.ok(
    actions.some((a) => a.includes('80-vmstub-ethernet.network')),
    'networkd, as the installer sets it up',
  );
  assert.ok(
    actions.some((a) => a.includes("sed -i '/^GENTOO_MIRRORS=/d'")),
    "the build's mirror goes",
  );
  assert.ok(!actions.some((a) => a.includes("echo 'GENTOO_MIRRORS")), 'the official mirror needs no line');
});

test("an RPM-family image: the release's kernel, its own mirror, the live and initramfs tools in its bootstrap, keyed by the stub too", () => {
  const c = readImageConfig(
    file('el.yaml', 'name: el\ndistro: centos9stream\nformats: [iso]\nusers: [{name: a, sudo: true}]\n'),
    'x86_64',
  );
  assert.equal(c.kernel, 'kernel');
  assert.equal(c.mirror, c.distro.mirror);
  assert.equal(c.finalMirror, c.distro.mirror);
  assert.deepEqual(bootstrapPackages(c), [
    'dracut',
    'dracut-config-generic',
    'dracut-live',
    'kernel',
    'kmod',
    'sudo',
    'zstd',
  ]);
  const [bootstrap] = planStages(c, { repo: 'x' }, null);
  assert.deepEqual(Object.keys(bootstrap!.inputs).sort(), [
    'arch',
    'distro',
    'keyring',
    'packages',
    'snapshot',
    'stage',
    'steps',
    'stub',
    'version',
  ]);
  const actions = imageRootActions(c, true).map((a) => JSON.stringify(a));
  assert.ok(
    actions.some((a) => a.includes('"/etc/yum.repos.d/vmstub.repo"')),
    'the final repositories',
  );
  assert.ok(!actions.some((a) => a.includes('/etc/apt/')), 'nothing of apt');
});

test('medium: a named one or a size, only with an ISO; a bad one said with its line', () => {
  const base = 'name: web\ndistro: debian12\nformats: [iso]\n';
  assert.deepEqual(readImageConfig(file('cd.yaml', `${base}medium: cd\n`), 'x86_64').medium, {
    name: 'cd',
    bytes: 737_280_000,
  });
  assert.deepEqual(readImageConfig(file('stick.yaml', `${base}medium: 8G\n`), 'x86_64').medium, {
    name: '8G',
    bytes: 8 * 1024 ** 3,
  });
  assert.equal(readImageConfig(file('none.yaml', base), 'x86_64').medium, undefined);
  assert.match(
    problems(file('floppy.yaml', `${base}medium: floppy\n`)),
    /medium.*'floppy' is not a medium \(cd, dvd, dvd-dl, bd, bd-dl\) or a size \(8G\)/,
  );
  assert.match(problems(file('unit.yaml', `${base}medium: '700'\n`)), /medium.*needs a unit/);
  assert.match(
    problems(file('noiso.yaml', 'name: web\ndistro: debian12\nmedium: dvd\n')),
    /medium.*is where an ISO goes, and formats has no iso/,
  );
});
