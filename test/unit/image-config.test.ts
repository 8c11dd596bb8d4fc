import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bootstrapPackages, explainStages, planStages } from '../../src/image/build.js';
import { imageJsonSchema, readImageConfig } from '../../src/image/config.js';
import { foreignArchProblem } from '../../src/image/foreign-arch.js';
import { changedInputs, StageCache } from '../../src/image/stage-cache.js';
import { VmstubError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'vmstub-image-config-'));

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
    /packages\[1\]: 'no such' is not a package name \(line 3\)/,
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

test('what cannot be built is refused with the reason', () => {
  assert.match(
    problems(file('r.yaml', 'name: r\ndistro: rocky8\n')),
    /images are built for Debian and Ubuntu/,
  );
  assert.match(problems(file('u.yaml', 'name: u\ndistro: nosuch\n')), /unknown distribution 'nosuch'/);
  assert.match(problems(file('n.yaml', 'distro: debian12\n')), /name: name is required/);
  assert.match(
    problems(file('a.yaml', 'name: a\ndistro: debian12\narch: aarch64\nformats: [iso]\n')),
    /iso: only x86_64 ISOs so far/,
  );
  const plain = file('plain.sh', '#!/bin/sh\n');
  chmodSync(plain, 0o644);
  assert.match(problems(file('x.yaml', 'name: x\ndistro: debian12\nhook: plain.sh\n')), /is not executable/);
  assert.match(
    problems(file('p.yaml', 'name: p\ndistro: debian12\nusers: [{name: bob, passwordHash: secret}]\n')),
    /plain passwords are refused/,
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

test('a foreign architecture needs binfmt_misc with qemu registered, enabled, with the F flag', () => {
  const binfmt = mkdtempSync(join(tmpdir(), 'binfmt-'));
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
