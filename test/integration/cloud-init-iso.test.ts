/**
 * run --cloud-init-iso against real QEMU and xorriso: the seed is an ISO labelled cidata that
 * xorriso reads back, attached read-only as the disk with serial cidata, and a Linux guest (the
 * fixture: Debian's cloud kernel, busybox) mounts it with isofs and finds user-data, meta-data and
 * vendor-data under their long names, byte for byte what vmstub wrote. The host keys in its
 * vendor-data are the ones recorded in the instance's known_hosts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { Sandbox } from '../helpers/cli.js';
import { fixtureSystemImage, type FixtureImage } from '../helpers/fixture.js';

let fixture: FixtureImage;
let box: Sandbox;
let work: string;

before(() => {
  fixture = fixtureSystemImage();
  box = new Sandbox();
  work = mkdtempSync(join(tmpdir(), 'vmstub-cidata-'));
});
after(() => {
  box.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const USER_DATA =
  '#cloud-config\n# kept as written, comments too\nhostname: seeded\nruncmd: [touch /root/x]\n';

test('the seed: a cidata ISO of user-data as written, meta-data naming the instance, vendor-data with host keys', async () => {
  const userData = join(work, 'user-data.yaml');
  writeFileSync(userData, USER_DATA);
  const r = box.run([
    'run',
    '--detach',
    '--name',
    'ci1',
    '--memory',
    '256M',
    '--cpus',
    '1',
    '--cloud-init-iso',
    userData,
    fixture.image,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const iso = join(box.instanceDir('ci1'), 'cidata.iso');
  assert.equal(statSync(iso).mode & 0o777, 0o600, 'its vendor-data holds private host keys');

  const volume = execFileSync('xorriso', ['-indev', iso, '-pvd_info'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  assert.match(volume, /^Volume Id\s*:\s*cidata$/m);
  const out = join(work, 'extracted');
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', '/', out], { stdio: 'ignore' });
  assert.deepEqual(readdirSync(out).sort(), ['meta-data', 'user-data', 'vendor-data']);
  assert.equal(readFileSync(join(out, 'user-data'), 'utf8'), USER_DATA);
  const meta = parse(readFileSync(join(out, 'meta-data'), 'utf8')) as Record<string, unknown>;
  assert.equal(meta['instance-id'], 'iid-vmstub-ci1');
  assert.equal(meta['local-hostname'], 'ci1');
  assert.ok(
    (meta['public-keys'] as string[]).length >= 1,
    'your keys (or the instance key) for the default user',
  );
  const vendor = readFileSync(join(out, 'vendor-data'), 'utf8');
  assert.match(vendor, /^#cloud-config\n/);
  const sshKeys = (parse(vendor) as { ssh_keys: Record<string, string> }).ssh_keys;
  assert.match(sshKeys.ed25519_private!, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  const knownHosts = readFileSync(join(box.instanceDir('ci1'), 'ssh', 'known_hosts'), 'utf8');
  for (const type of ['rsa', 'ecdsa', 'ed25519'])
    assert.ok(
      knownHosts.includes(sshKeys[`${type}_public`]!.split(' ').slice(0, 2).join(' ')),
      `${type}: ${knownHosts}`,
    );

  // The guest's Linux reads the same files from the disk with serial cidata.
  await box.waitForConsole('ci1', 'ci1 to boot', 'VMSTUB-FIXTURE-READY', 90_000);
  const log = box.consoleLog('ci1');
  assert.match(log, /DISK vd[a-z] serial=cidata/);
  for (const f of readdirSync(out)) {
    const sum = createHash('sha256')
      .update(readFileSync(join(out, f)))
      .digest('hex');
    assert.match(log, new RegExp(`SEED ${f} ${sum}`), `${f} as the guest read it`);
  }
  assert.equal(box.run(['stop', '--force', 'ci1']).code, 0);
});

test('a seed whose user-data fails its schema is refused before anything is made', () => {
  const bad = join(work, 'bad.yaml');
  writeFileSync(bad, '#cloud-config\nruncmd: 5\n');
  const r = box.run(['run', '--name', 'ci2', '--cloud-init-iso', bad, fixture.image]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^vmstub: .*bad\.yaml: runcmd: must be array \(line 2\)\n$/);
  const missing = box.run([
    'run',
    '--name',
    'ci2',
    '--cloud-init-iso',
    join(work, 'none.yaml'),
    fixture.image,
  ]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^vmstub: --cloud-init-iso: cannot read .*none\.yaml: ENOENT\n$/);
  assert.equal(box.run(['show', 'ci2']).code, 3, 'no instance');
});
