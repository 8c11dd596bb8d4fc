import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readUserData, translateUserData } from '../../src/cloud-init/user-data.js';
import { buildPlan, type Action } from '../../src/installer/plan/index.js';
import { userAddArgvs } from '../../src/installer/render.js';
import { resolveSpec, type SpecInput } from '../../src/installer/spec.js';

const REAL = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/real/cloud-init');
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2hc8Jz6qs6v0DrzFkq0CrWp9ncQ4cWwBFUe9VtbCHn test@host';
const defaults = { hostname: 'web1', timezone: 'UTC', sshKeys: [KEY], arch: 'x86_64' as const };

const dir = mkdtempSync(join(tmpdir(), 'vmstub-user-data-'));
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
