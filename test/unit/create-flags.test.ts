/**
 * Every flag of `vmstub create`, given on one command line, and where each lands: the install spec
 * the stub receives, the machine, or create's own options. A flag added to create without a row here
 * fails the first test, so none goes untested.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildProgram, commandPath, leafCommands } from '../../src/cli/program.js';
import { specFromOptions } from '../../src/cli/spec-options.js';
import { createSpec } from '../../src/installer/create.js';
import type { InstallSpec, MachineSpec } from '../../src/installer/spec.js';

const dir = mkdtempSync(join(tmpdir(), 'vmstub-create-flags-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFlagTestKeyFlagTestKeyFlagTestKeyFlagTest0 flags@test';
const keyFile = join(dir, 'id.pub');
writeFileSync(keyFile, `${KEY}\n`);
const keyring = join(dir, 'keyring.gpg');
writeFileSync(keyring, '');
const config = join(dir, 'web1.yaml');
writeFileSync(config, 'distro: debian13\npackages: [htop]\n');
const userData = join(dir, 'user-data.yaml');
writeFileSync(userData, '#cloud-config\npackages: [jq]\n');
const HASH = '$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6WouIL9AjRbLCelDCy.g.';

interface Row {
  argv: string[];
  /** Where the flag's value must be seen once create has resolved it. */
  check: (r: { spec: InstallSpec; machine: MachineSpec; values: Record<string, unknown> }) => void;
}

const ROWS: Record<string, Row> = {
  '--config': { argv: ['--config', config], check: ({ spec }) => assert.ok(spec.packages.includes('htop')) },
  '--user-data': {
    argv: ['--user-data', userData],
    check: ({ spec }) => assert.ok(spec.packages.includes('jq')),
  },
  '--distro': { argv: ['--distro', 'debian12'], check: ({ spec }) => assert.equal(spec.distro, 'debian12') },
  '--arch': { argv: ['--arch', 'aarch64'], check: ({ spec }) => assert.equal(spec.arch, 'aarch64') },
  '--hostname': { argv: ['--hostname', 'db7'], check: ({ spec }) => assert.equal(spec.hostname, 'db7') },
  '--filesystem': {
    argv: ['--filesystem', 'ext4'],
    check: ({ spec }) => assert.equal(spec.filesystem, 'ext4'),
  },
  '--wipe': { argv: ['--wipe'], check: ({ spec }) => assert.equal(spec.wipe, true) },
  '--encrypt': { argv: ['--encrypt'], check: ({ spec }) => assert.equal(spec.encrypt, true) },
  '--unlock': {
    argv: ['--unlock', 'console'],
    check: ({ machine }) => assert.equal(machine.unlock, 'console'),
  },
  '--key-file': {
    argv: ['--key-file', 'web1.key'],
    check: ({ machine }) => assert.match(machine.keyFile ?? '', /^\/.*\/web1\.key$/),
  },
  '--mirror': {
    argv: ['--mirror', 'http://127.0.0.1:9/debian/'],
    check: ({ spec }) => assert.equal(spec.mirror, 'http://127.0.0.1:9/debian'),
  },
  '--security-mirror': {
    argv: ['--security-mirror', 'http://127.0.0.1:9/security'],
    check: ({ spec }) => assert.equal(spec.securityMirror, 'http://127.0.0.1:9/security'),
  },
  '--proxy': {
    argv: ['--proxy', 'http://127.0.0.1:3128'],
    check: ({ spec }) => assert.equal(spec.proxy, 'http://127.0.0.1:3128'),
  },
  '--keyring': { argv: ['--keyring', keyring], check: ({ spec }) => assert.equal(spec.keyring, keyring) },
  '--timezone': {
    argv: ['--timezone', 'Europe/Paris'],
    check: ({ spec }) => assert.equal(spec.timezone, 'Europe/Paris'),
  },
  '--locale': {
    argv: ['--locale', 'de_DE.UTF-8'],
    check: ({ spec }) => assert.equal(spec.locale, 'de_DE.UTF-8'),
  },
  '--keyboard': { argv: ['--keyboard', 'fr'], check: ({ spec }) => assert.equal(spec.keyboard, 'fr') },
  '--bootstrap': {
    argv: ['--bootstrap', 'debootstrap'],
    check: ({ spec }) => assert.equal(spec.bootstrap, 'debootstrap'),
  },
  '--package': {
    argv: ['--package', 'tree', '--package', 'curl'],
    check: ({ spec }) => assert.deepEqual(spec.packages, ['htop', 'jq', 'tree', 'curl']),
  },
  '--user': {
    argv: ['--user', 'alice'],
    check: ({ spec }) => assert.deepEqual(spec.users[0]?.name, 'alice'),
  },
  '--ssh-key': {
    argv: ['--ssh-key', keyFile],
    check: ({ spec }) => {
      assert.deepEqual(spec.root.sshKeys, [KEY]);
      assert.deepEqual(spec.users[0]?.sshKeys, [KEY], '--user gets the keys given');
    },
  },
  '--root-password-hash': {
    argv: ['--root-password-hash', HASH],
    check: ({ spec }) => assert.equal(spec.root.passwordHash, HASH),
  },
  '--post-install': {
    argv: ['--post-install', 'echo post'],
    check: ({ spec }) => assert.deepEqual(spec.postInstall, ['echo post']),
  },
  '--first-boot': {
    argv: ['--first-boot', 'echo first'],
    check: ({ spec }) => assert.deepEqual(spec.firstBoot, ['echo first']),
  },
  '--every-boot': {
    argv: ['--every-boot', 'echo every'],
    check: ({ spec }) => assert.deepEqual(spec.everyBoot, ['echo every']),
  },
  '--disk': {
    argv: ['--disk', '12G'],
    check: ({ machine }) => assert.equal(machine.diskBytes, 12 * 1024 ** 3),
  },
  '--memory': { argv: ['--memory', '3G'], check: ({ machine }) => assert.equal(machine.memoryMiB, 3072) },
  '--cpus': { argv: ['--cpus', '4'], check: ({ machine }) => assert.equal(machine.cpus, 4) },
  '--hostfwd': {
    argv: ['--hostfwd', '8080:80'],
    check: ({ machine }) =>
      assert.deepEqual(
        machine.hostfwds.map((f) => [f.hostPort, f.guestPort]),
        [[8080, 80]],
      ),
  },
  '--auto-forward': {
    argv: ['--auto-forward'],
    check: ({ machine }) => assert.equal(machine.autoForward, true),
  },
  '--share': {
    argv: ['--share', `${dir}:data`],
    check: ({ machine }) => assert.deepEqual(machine.shares, [`${dir}:data`]),
  },
  '--ssh-timeout': {
    argv: ['--ssh-timeout', '90'],
    check: ({ values }) => assert.equal(values.sshTimeout, 90),
  },
  '--bootstrap-on': {
    argv: ['--bootstrap-on', 'guest'],
    check: ({ values }) => assert.equal(values.bootstrapOn, 'guest'),
  },
  '--fresh': { argv: ['--fresh'], check: ({ values }) => assert.equal(values.fresh, true) },
  '--explain': { argv: ['--explain'], check: ({ values }) => assert.equal(values.explain, true) },
  '--no-package-cache': {
    argv: ['--no-package-cache'],
    check: ({ values }) => assert.equal(values.packageCache, false),
  },
  '--dry-run': { argv: ['--dry-run'], check: ({ values }) => assert.equal(values.dryRun, true) },
  '--json': { argv: ['--json'], check: ({ values }) => assert.equal(values.json, true) },
};

const create = () => leafCommands(buildProgram()).find((c) => commandPath(c) === 'create')!;

test('every flag of create has a row here', () => {
  const flags = create()
    .options.map((o) => o.long!)
    .filter((f) => f !== '--help');
  assert.deepEqual([...flags].sort(), Object.keys(ROWS).sort());
});

test('every flag of create, on one command line, lands where it should', () => {
  const c = create();
  const argv = Object.values(ROWS).flatMap((r) => r.argv);
  c.parseOptions(argv);
  const values = c.opts() as Record<string, unknown>;
  const { input, source } = specFromOptions('create', values);
  const { spec, machine } = createSpec({ name: 'web1', input, source }, []);
  for (const [flag, row] of Object.entries(ROWS)) {
    try {
      row.check({ spec, machine, values });
    } catch (e) {
      throw new Error(`${flag}: ${(e as Error).message}`, { cause: e });
    }
  }
});
