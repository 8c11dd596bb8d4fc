import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { commandPath, buildProgram, leafCommands } from '../../src/cli/program.js';
import { specFromOptions } from '../../src/cli/spec-options.js';
import { FILESYSTEMS, fileFields, specJsonSchema } from '../../src/installer/spec-fields.js';
import { readSpecFile, resolveSpecAndMachine } from '../../src/installer/spec.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2hc8Jz6qs6v0DrzFkq0CrWp9ncQ4cWwBFUe9VtbCHn test@host';
const defaults = { hostname: 'web1', timezone: 'Europe/Berlin', sshKeys: [KEY], arch: 'x86_64' as const };
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const dir = mkdtempSync(join(tmpdir(), 'spec-schema-'));
const write = (name: string, text: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

/** What create's options become for the words given (parsing only; nothing runs). */
function createOptions(argv: string[]): Record<string, unknown> {
  const create = leafCommands(buildProgram()).find((c) => commandPath(c) === 'create')!;
  create.parseOptions(argv);
  return create.opts();
}

test('every problem in a file at once, in file order, each with its field and line', () => {
  const file = write(
    'many.yaml',
    [
      'distro: almalinux9',
      'filesystem: btrfs',
      'timezone: Mars/Olympus',
      'users:',
      '  - name: Bad',
      '    sudo: yes',
      '  - homedir: /srv/x',
      'cpus: 100',
      'memory: lots',
      'forwards: ["80"]',
      'colour: blue',
    ].join('\n') + '\n',
  );
  const { input, source } = readSpecFile(file);
  assert.throws(
    () => resolveSpecAndMachine(input, defaults, source),
    (e: Error) => {
      const m = e.message;
      assert.ok(m.startsWith(`${file}: 10 problems: `), m);
      const expected = [
        /filesystem: AlmaLinux 9's kernel cannot boot from btrfs \(xfs, ext4\) \(line 2\)/,
        /timezone: 'Mars\/Olympus' is not in the time zone database .* \(line 3\)/,
        /users\[0\]\.name: 'Bad' is not a valid user name \(line 5\)/,
        /users\[0\]\.sudo: must be true or false \(line 6\)/,
        /users\[1\]\.name: is required \(line 7\)/,
        /users\[1\]\.homedir: unknown field 'homedir' \(line 7\)/,
        /cpus: must be a whole number from 1 to 64 \(line 8\)/,
        /memory: 'lots' is not a size .* \(line 9\)/,
        /forwards\[0\]: --hostfwd '80' is not .* \(line 10\)/,
        /colour: unknown field 'colour' \(line 11\)/,
      ];
      const parts = m.slice(m.indexOf('problems: ') + 10).split('; ');
      assert.equal(parts.length, expected.length, m);
      expected.forEach((re, i) => assert.match(parts[i]!, re));
      assert.ok(!m.includes('\n'), 'one line');
      return true;
    },
  );
});

test('flags over a file: a scalar replaces, a list adds; a problem a flag caused names the flag', () => {
  const file = write(
    'base.yaml',
    'distro: debian12\nhostname: from-file\npackages: [htop]\nlocale: xx_YY.UTF-8\nmemory: 1G\n',
  );
  const fixed = specFromOptions(
    'create',
    createOptions([
      '--config',
      file,
      '--hostname',
      'from-flag',
      '--package',
      'curl',
      '--locale',
      'de_DE.UTF-8',
    ]),
  );
  const { spec, machine } = resolveSpecAndMachine(fixed.input, defaults, fixed.source);
  assert.equal(spec.hostname, 'from-flag');
  assert.deepEqual(spec.packages, ['htop', 'curl']);
  assert.equal(spec.locale, 'de_DE.UTF-8');
  assert.equal(machine.memoryMiB, 1024, 'from the file');

  const broken = specFromOptions('create', createOptions(['--config', file, '--timezone', 'Nowhere/Atall']));
  assert.throws(
    () => resolveSpecAndMachine(broken.input, defaults, broken.source),
    /base\.yaml: 2 problems: locale: 'xx_YY\.UTF-8' .* \(line 4\); timezone: 'Nowhere\/Atall' .* \(--timezone\)$/,
  );
});

test('--user accounts get sudo and root keys; --ssh-key reads key files', () => {
  const keyFile = write('id.pub', `${KEY}\n`);
  const { input, source } = specFromOptions(
    'create',
    createOptions(['--distro', 'debian12', '--ssh-key', keyFile, '--user', 'alice', '--user', 'bob']),
  );
  const { spec } = resolveSpecAndMachine(input, defaults, source);
  assert.deepEqual(
    spec.users.map((u) => [u.name, u.sudo, u.sshKeys]),
    [
      ['alice', true, [KEY]],
      ['bob', true, [KEY]],
    ],
  );
  assert.deepEqual(spec.root.sshKeys, [KEY]);
  assert.throws(
    () =>
      specFromOptions('create', createOptions(['--distro', 'debian12', '--ssh-key', join(dir, 'none.pub')])),
    /--ssh-key: cannot read .*none\.pub/,
  );
});

test('machine fields: disk, memory, CPUs, forwards and shares (relative to the file), with defaults', () => {
  const file = write(
    'vm.yaml',
    'distro: debian12\ndisk: 20G\nmemory: 3072\ncpus: 4\nforwards: ["8080:80", "127.0.0.1:5353:53/udp"]\nshares: [data, "/srv:www"]\n',
  );
  const { input, source } = readSpecFile(file);
  const { machine } = resolveSpecAndMachine(input, defaults, source);
  assert.equal(machine.diskBytes, 20 * 1024 ** 3);
  assert.equal(machine.memoryMiB, 3072);
  assert.equal(machine.cpus, 4);
  assert.deepEqual(
    machine.hostfwds.map((f) => `${f.hostAddr}:${f.hostPort}->${f.guestPort}/${f.protocol}`),
    ['127.0.0.1:8080->80/tcp', '127.0.0.1:5353->53/udp'],
  );
  assert.deepEqual(machine.shares, ['data', '/srv:www']);
  assert.equal(machine.baseDir, dir);
  const plain = resolveSpecAndMachine({ distro: 'debian12' }, defaults).machine;
  assert.deepEqual([plain.diskBytes, plain.memoryMiB, plain.cpus], [8 * 1024 ** 3, 2048, 2]);
});

test('the JSON Schema: every file field, nothing vmstub sets itself, enums from the same lists', () => {
  const schema = specJsonSchema() as {
    properties: Record<string, { enum?: string[]; description?: string }>;
    additionalProperties: boolean;
  };
  assert.deepEqual(Object.keys(schema.properties).sort(), [...fileFields].sort());
  assert.ok(!('resume' in schema.properties));
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.properties.filesystem!.enum, [...FILESYSTEMS]);
  assert.match(schema.properties.filesystem!.description!, /default: xfs/);
  const shipped = JSON.parse(readFileSync(join(REPO, 'schema', 'spec.schema.json'), 'utf8'));
  assert.deepEqual(shipped, schema, 'schema/spec.schema.json is stale: npm run docs writes it');
});
