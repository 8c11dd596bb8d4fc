import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { commandPath, buildProgram, leafCommands } from '../../src/cli/program.js';
import { specFromOptions } from '../../src/cli/spec-options.js';
import { readUserData, translateUserData } from '../../src/cloud-init/user-data.js';
import { waitForFirstBoot } from '../../src/installer/boot-commands.js';
import { buildPlan, type Action } from '../../src/installer/plan/index.js';
import { userAddArgvs } from '../../src/installer/render.js';
import { readSpecFile, resolveSpec, type SpecInput } from '../../src/installer/spec.js';

const REAL = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/real/cloud-init');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2hc8Jz6qs6v0DrzFkq0CrWp9ncQ4cWwBFUe9VtbCHn test@host';
const defaults = { hostname: 'web1', timezone: 'UTC', sshKeys: [KEY], arch: 'x86_64' as const };

const dir = mkdtempSync(join(tmpdir(), 'vmstub-user-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test("cloud-init's own examples pass its schema; the one with a version pin is refused", () => {
  const examples = readdirSync(REAL).filter((f) => f.endsWith('.txt'));
  assert.ok(examples.length >= 8);
  for (const f of examples) {
    const { config } = readUserData(join(REAL, f));
    if (f === 'cloud-config-install-packages.txt')
      assert.throws(() => translateUserData(config, f), /packages\[2\]: version pins are not applied/);
    else translateUserData(config, f);
  }
});

test('the users example: what the installer applies, and a warning for each key it does not', () => {
  const { config } = readUserData(join(REAL, 'cloud-config-user-groups.txt'));
  const { input, warnings } = translateUserData(config, 'ug');
  const names = (input.users ?? []).map((u) => u.name);
  assert.deepEqual(names, ['foobar', 'barfoo', 'testuser', 'cloudy', 'fizzbuzz', 'nosshlogins']);
  const foobar = input.users![0]!;
  assert.deepEqual(foobar.groups, ['users']);
  // foobar says lock_passwd: false, so its password hash is set.
  assert.match(foobar.passwordHash ?? '', /^\$6\$j212wezy\$/);
  const barfoo = input.users![1]!;
  assert.equal(barfoo.sudo, true);
  assert.equal(barfoo.sshKeys?.length, 1);
  assert.deepEqual(barfoo.groups, ['users', 'admin']);
  assert.ok(warnings.some((w) => w.startsWith('ug: groups: not applied')));
  assert.ok(warnings.includes("ug: users[0]: 'default' (the distribution's default user) is root in vmstub"));
  assert.ok(warnings.includes('ug: users[6]: not applied: a user without a name (snapuser)'));
  assert.ok(warnings.some((w) => w === 'ug: users[1].gecos: not applied'));
});

test('every schema problem at once, in file order, with its path and line', () => {
  const bad = file(
    'bad.yaml',
    [
      '#cloud-config',
      'hostnme: web7',
      'timezone: 5',
      'users:',
      '  - name: bob',
      '    lock_passwd: maybe',
      '    shell: [1]',
      'packages:',
      '  - [tree, 1.0]',
      'write_files:',
      '  - content: x',
      '',
    ].join('\n'),
  );
  assert.throws(
    () => readUserData(bad),
    (e: Error) => {
      assert.equal(
        e.message,
        `${bad}: 6 problems: hostnme: is not a cloud-config key (line 2); timezone: must be string (line 3); ` +
          'users[0].lock_passwd: must be boolean (line 6); users[0].shell: must be string (line 7); ' +
          "packages[0]: matches none of the forms it may take (line 9); write_files[0]: must have required property 'path' (line 11)",
      );
      return true;
    },
  );
});

test('read as cloud-init reads it: YAML 1.1, so yes is true; other user-data kinds are refused', () => {
  const yes = file(
    'yes.yaml',
    '#cloud-config\nusers:\n  - name: ann\n    lock_passwd: no\n    passwd: $6$salt$hash\n',
  );
  const { input } = translateUserData(readUserData(yes).config, 'yes');
  assert.equal(input.users![0]!.passwordHash, '$6$salt$hash');
  assert.throws(() => readUserData(file('s.sh', '#!/bin/sh\necho\n')), /must be a #cloud-config file/);
  assert.throws(() => readUserData(file('inc', '#include\nhttp://x/\n')), /must be a #cloud-config file/);
});

test('user-data in a plan: host name, time zone, packages, root keys, a user with groups and a shell', () => {
  const ud = file(
    'web.yaml',
    [
      '#cloud-config',
      'hostname: web7',
      'timezone: Europe/Berlin',
      'packages: [tree]',
      `ssh_authorized_keys: ['${KEY}']`,
      'users:',
      '  - name: alice',
      '    groups: adm, video',
      '    shell: /bin/sh',
      '    sudo: ALL=(ALL) NOPASSWD:ALL',
      '',
    ].join('\n'),
  );
  const { input } = translateUserData(readUserData(ud).config, 'web');
  const plan = buildPlan(resolveSpec({ distro: 'debian12', ...input } as SpecInput, defaults));
  assert.equal(plan.spec.hostname, 'web7');
  assert.equal(plan.spec.timezone, 'Europe/Berlin');
  assert.ok(plan.spec.packages.includes('tree'));
  assert.deepEqual(plan.spec.root.sshKeys, [KEY]);
  const argvs = plan.steps
    .flatMap((s) => s.actions)
    .filter((a): a is Extract<Action, { kind: 'exec' }> => a.kind === 'exec')
    .map((a) => a.argv.join(' '));
  assert.ok(argvs.includes('groupadd -f adm'));
  assert.ok(argvs.includes('groupadd -f video'));
  assert.ok(argvs.includes('useradd --create-home --shell /bin/sh --groups sudo,adm,video alice'));
});

test('a user recorded by an older vmstub (no groups, no shell) is made as before', () => {
  assert.deepEqual(userAddArgvs({ name: 'carol', sudo: true }, 'wheel'), [
    ['useradd', '--create-home', '--shell', '/bin/bash', '--groups', 'wheel', 'carol'],
  ]);
});

test("cloud-init's write_files example: b64, text, !!binary and gzip contents as the bytes it writes", () => {
  const { config } = readUserData(join(REAL, 'cloud-config-write-files.txt'));
  const files = translateUserData(config, 'wf').input.files ?? [];
  assert.deepEqual(
    files.map((f) => [f.path, f.mode, f.owner, f.encoding]),
    [
      ['/etc/sysconfig/selinux', '0644', 'root:root', undefined],
      ['/etc/sysconfig/samba', undefined, undefined, undefined],
      ['/bin/arch', '0555', undefined, 'base64'],
      ['/usr/bin/hello', '0755', undefined, undefined],
    ],
  );
  assert.match(files[0]!.content, /^\n# This file controls the state of SELinux/);
  // An ELF binary is not text: kept as base64 of its bytes.
  assert.equal(Buffer.from(files[2]!.content, 'base64').subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.equal(files[3]!.content, '#!/bin/sh\necho hello world\n');

  const plan = buildPlan(resolveSpec({ distro: 'debian12', files } as SpecInput, defaults));
  const puts = plan.steps.find((s) => s.id === 'files')!.actions as Extract<Action, { kind: 'put-file' }>[];
  assert.deepEqual(
    puts.map((a) => [a.path, a.mode.toString(8), a.owner]),
    [
      ['/etc/sysconfig/selinux', '644', 'root:root'],
      ['/etc/sysconfig/samba', '644', 'root'],
      ['/bin/arch', '555', 'root'],
      ['/usr/bin/hello', '755', 'root'],
    ],
  );
  assert.equal(Buffer.from(puts[3]!.base64, 'base64').toString(), '#!/bin/sh\necho hello world\n');
  const order = plan.steps.map((s) => s.id);
  assert.ok(order.indexOf('accounts') < order.indexOf('files'), 'files are written once users exist');
});

test("runcmd's argument lists become shell lines that give back the same arguments", () => {
  const { config } = readUserData(join(REAL, 'cloud-config-run-cmds.txt'));
  const lines = translateUserData(config, 'rc').input.firstBoot ?? [];
  const lists = (config.runcmd as unknown[]).filter(Array.isArray) as string[][];
  const fromLists = lines.filter((_, i) => Array.isArray((config.runcmd as unknown[])[i]));
  assert.equal(fromLists.length, lists.length);
  fromLists.forEach((line, i) => {
    // The shell splits the line back into the list: printf shows each argument on its own.
    const words = execFileSync('/bin/sh', ['-c', `set -- ${line}; printf '%s\\0' "$@"`], {
      encoding: 'utf8',
    });
    assert.deepEqual(words.split('\0').slice(0, -1), lists[i]);
  });
  assert.ok(lines.includes('ls -l /root'), 'a string entry is kept as written');
});

test('boot commands in a plan: a script and a unit each, enabled; refused where the system has upstart', () => {
  const { config } = readUserData(join(REAL, 'cloud-config-boot-cmds.txt'));
  const { input, warnings } = translateUserData(config, 'bc');
  assert.ok(
    warnings.includes('bc: bootcmd[1]: runs cloud-init-per, which only a system with cloud-init has'),
  );
  const plan = buildPlan(
    resolveSpec({ distro: 'debian12', ...input, firstBoot: ['touch /root/once'] } as SpecInput, defaults),
  );
  const step = plan.steps.find((s) => s.id === 'boot-commands')!;
  const written = Object.fromEntries(
    step.actions.flatMap((a) => (a.kind === 'write' ? [[a.path, a.content] as const] : [])),
  );
  assert.match(
    written['/var/lib/vmstub/every-boot']!,
    /^echo 192\.168\.1\.130 us\.archive\.ubuntu\.com >> \/etc\/hosts$/m,
  );
  assert.match(written['/var/lib/vmstub/first-boot']!, /^touch \/root\/once$/m);
  assert.match(written['/etc/systemd/system/vmstub-every-boot.service']!, /^Before=network-pre\.target/m);
  assert.match(written['/etc/systemd/system/vmstub-first-boot.service']!, /^After=network-online\.target$/m);
  const enable = step.actions.at(-1) as Extract<Action, { kind: 'exec' }>;
  assert.deepEqual(enable.argv, [
    'systemctl',
    'enable',
    'vmstub-first-boot.service',
    'vmstub-every-boot.service',
  ]);
  assert.throws(
    () => resolveSpec({ distro: 'centos6', firstBoot: ['true'] }, defaults),
    /firstBoot: CentOS 6\.10 boots with upstart/,
  );
});

test("a spec's files: absolute paths without .., octal modes, USER[:GROUP] owners, base64 that is base64", () => {
  const bad = [
    { path: 'etc/motd', content: '' },
    { path: '/etc/../../motd', content: '' },
    { path: '/etc/motd', content: '', mode: '644x' },
    { path: '/etc/motd', content: '', owner: 'root:' },
    { path: '/etc/motd', content: 'not base64!', encoding: 'base64' },
  ];
  assert.throws(
    () => resolveSpec({ distro: 'debian12', files: bad } as SpecInput, defaults),
    (e: Error) => {
      for (const m of [
        /files\[0\]\.path: 'etc\/motd' is not an absolute file path/,
        /files\[1\]\.path: '\/etc\/\.\.\/\.\.\/motd' is not an absolute file path/,
        /files\[2\]\.mode: '644x' is not an octal mode/,
        /files\[3\]\.owner: 'root:' is not USER or USER:GROUP/,
        /files\[4\]\.content: is not base64/,
      ])
        assert.match(e.message, m);
      return true;
    },
  );
});

test('with cloud-init among the packages, the user-data is seeded as written and vmstub applies none of it', () => {
  const text = '#cloud-config\nhostname: web7\nruncmd: [touch /root/x]\n';
  const ud = file('seeded.yaml', text);
  const create = leafCommands(buildProgram()).find((c) => commandPath(c) === 'create')!;
  create.parseOptions(['--distro', 'debian12', '--package', 'cloud-init', '--user-data', ud]);
  const { input, source } = specFromOptions('create', create.opts());
  const spec = resolveSpec(input, defaults, source);
  assert.equal(spec.userData, text);
  assert.equal(spec.hostname, 'web1', 'cloud-init sets the host name itself');
  assert.deepEqual(spec.firstBoot, []);
  const seed = buildPlan(spec).steps.find((s) => s.id === 'cloud-init-seed')!;
  const written = Object.fromEntries(
    seed.actions.flatMap((a) => (a.kind === 'write' ? [[a.path, a.content] as const] : [])),
  );
  assert.equal(written['/var/lib/cloud/seed/nocloud/user-data'], text);
  assert.match(written['/var/lib/cloud/seed/nocloud/meta-data']!, /^local-hostname: web1$/m);
  assert.match(written['/etc/cloud/cloud.cfg.d/90-vmstub.cfg']!, /^network: \{config: disabled\}$/m);
  assert.match(written['/etc/cloud/cloud.cfg.d/90-vmstub.cfg']!, /^ssh_deletekeys: false$/m);
  assert.match(written['/etc/cloud/cloud.cfg.d/90-vmstub.cfg']!, /^resize_rootfs: false$/m);
  assert.equal(waitForFirstBoot(spec), '( cloud-init status --wait >/dev/null )');
  assert.throws(
    () => readSpecFile(file('spec-with-seed.yaml', 'distro: debian12\nuserData: x\n')),
    /userData: is vmstub's to set/,
  );
});
