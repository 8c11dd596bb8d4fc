import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { changedInputs } from '../../src/image/stage-cache.js';
import { buildPlan, hostBootstrapPlan } from '../../src/installer/plan/index.js';
import {
  chooseBootstrapSite,
  parseDpkgStatus,
  rootInputs,
  stripIdentity,
  type HostAbilities,
} from '../../src/installer/root-cache.js';
import { resolveSpec, type SpecInput } from '../../src/installer/spec.js';

const defaults = { hostname: 'web1', timezone: 'UTC', sshKeys: [], arch: 'x86_64' as const };
const spec = (input: SpecInput = {}) => resolveSpec({ distro: 'debian12', ...input }, defaults);
const able: HostAbilities = { root: true, mmdebstrap: true, arch: 'x86_64', keyring: true };

test('the stub unpacks a root bootstrapped on the host instead of bootstrapping; the other steps stay', () => {
  const inGuest = buildPlan(spec());
  const fromHost = buildPlan({ ...spec(), rootTarball: true });
  const ids = (p: typeof inGuest) => p.steps.map((s) => s.id);
  assert.deepEqual(ids(inGuest).slice(0, 4), ['format', 'mount', 'prepare', 'bootstrap']);
  assert.deepEqual(ids(fromHost).slice(0, 3), ['format', 'mount', 'unpack']);
  assert.deepEqual(ids(fromHost).slice(3), ids(inGuest).slice(4), 'the machine-specific steps are the same');
  const unpack = fromHost.steps[2]!.actions[0]!;
  assert.ok(unpack.kind === 'exec' && unpack.argv.includes('/dev/disk/by-id/virtio-vmstub-root'));
  // The host runs exactly the steps the stub would have run.
  assert.deepEqual(hostBootstrapPlan(spec())!.steps, inGuest.steps.slice(2, 4));
});

test('only Debian and Ubuntu with mmdebstrap onto a disk are bootstrapped on the host', () => {
  assert.ok(hostBootstrapPlan(spec({ distro: 'ubuntu2404' })));
  assert.equal(hostBootstrapPlan(spec({ distro: 'centos9stream' })), undefined);
  assert.throws(
    () => buildPlan({ ...spec({ distro: 'centos9stream' }), rootTarball: true }),
    /not supported/,
  );
});

test('where the bootstrap runs: auto takes the host under TCG, the stub under KVM, the host for a cached root', () => {
  const site = (...a: Parameters<typeof chooseBootstrapSite>) => chooseBootstrapSite(...a).site;
  assert.equal(site(spec(), 'auto', 'tcg', able, false), 'host');
  assert.equal(site(spec(), 'auto', 'kvm', able, false), 'guest');
  assert.equal(site(spec(), 'auto', 'kvm', able, true), 'host');
  assert.equal(site(spec(), 'guest', 'tcg', able, true), 'guest');
  assert.equal(site(spec({ distro: 'fedora42' }), 'auto', 'tcg', able, false), 'guest');
  assert.equal(site(spec({ bootstrap: 'debootstrap' }), 'auto', 'tcg', able, false), 'guest');
  assert.equal(site(spec(), 'auto', 'tcg', { ...able, root: false }, false), 'guest');
  assert.match(
    chooseBootstrapSite(spec(), 'auto', 'tcg', { ...able, mmdebstrap: false }, false).reason,
    /apt-get install mmdebstrap/,
  );
  // Another architecture: on the host through qemu-user-static when binfmt_misc runs it, else in the stub.
  assert.equal(site(spec(), 'auto', 'tcg', { ...able, arch: 'aarch64' }, false), 'host');
  const noBinfmt = { ...able, arch: 'aarch64' as const, emulation: 'building for x86_64 needs binfmt_misc' };
  assert.equal(site(spec(), 'auto', 'tcg', noBinfmt, false), 'guest');
  assert.throws(
    () => chooseBootstrapSite(spec(), 'host', 'tcg', noBinfmt, false),
    /--bootstrap-on host: building for x86_64 needs binfmt_misc/,
  );
});

test("a cached root's key: what a miss says differed", () => {
  const snap = { 'http://deb.debian.org/debian bookworm': 'Sat, 11 Jul 2026 10:16:37 UTC' };
  const inputs = (s: SpecInput, snapshot = snap) =>
    rootInputs(hostBootstrapPlan(spec(s))!, 'mmdebstrap 1.3.5', snapshot);
  const base = inputs({});
  assert.deepEqual(changedInputs(base, inputs({})), [], 'the same recipe, the same inputs');
  assert.deepEqual(changedInputs(base, inputs({ packages: ['curl'] })), ['packages: +"curl"']);
  // The host name, users, keys and time zone are the stub's to write: the same cached root serves them all.
  assert.deepEqual(
    changedInputs(base, inputs({ hostname: 'other', timezone: 'Asia/Tokyo', users: [{ name: 'bob' }] })),
    [],
  );
  assert.deepEqual(
    changedInputs(base, inputs({ filesystem: 'ext4' })),
    ['files changed'],
    'the initramfs modules',
  );
  assert.match(
    changedInputs(base, inputs({ mirror: 'http://ftp.jp.debian.org/debian' })).join(),
    /^sources: \+/,
  );
  assert.deepEqual(
    changedInputs(
      base,
      inputs({}, { 'http://deb.debian.org/debian bookworm': 'Sat, 05 Sep 2026 10:00:00 UTC' }),
    ),
    ['snapshot changed'],
  );
});

test('what makes a machine itself is stripped from a root before it is cached', () => {
  const root = mkdtempSync(join(tmpdir(), 'vmstub-strip-'));
  try {
    for (const d of ['etc/ssh', 'var/lib/dbus', 'var/lib/systemd'])
      mkdirSync(join(root, d), { recursive: true });
    const files = [
      'etc/machine-id',
      'etc/hostname',
      'etc/ssh/ssh_host_ed25519_key',
      'etc/ssh/ssh_host_ed25519_key.pub',
      'etc/ssh/ssh_host_rsa_key',
      'etc/.resolv.conf.systemd-resolved.bak',
      'var/lib/dbus/machine-id',
      'var/lib/systemd/random-seed',
    ];
    for (const f of [...files, 'etc/ssh/sshd_config', 'etc/hosts']) writeFileSync(join(root, f), 'x');
    assert.deepEqual(stripIdentity(root).sort(), files.map((f) => `/${f}`).sort());
    assert.deepEqual(readdirSync(join(root, 'etc/ssh')), ['sshd_config']);
    assert.deepEqual(readdirSync(join(root, 'etc')).sort(), ['hosts', 'ssh']);
    assert.deepEqual(stripIdentity(root), [], 'nothing left to strip');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("dpkg's status file: installed packages and their versions, nothing half-installed", () => {
  const status = [
    'Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1',
    'Package: apt\nStatus: install ok installed\nVersion: 2.6.1\nDepends: libc6 (>= 2.34)',
    'Package: gone\nStatus: deinstall ok config-files\nVersion: 1.0',
    'Package: broken\nStatus: install ok half-configured\nVersion: 2.0',
  ].join('\n\n');
  assert.deepEqual(parseDpkgStatus(status + '\n'), { apt: '2.6.1', zlib1g: '1:1.2.13.dfsg-1' });
});
