/** Pure parts of "nothing lost": the cleanup stack, mount listing, install status, spec problems at once. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bootSkipReason } from '../../src/boot/handoff.js';
import { deriveInstallStatus, type InstallStatus } from '../../src/installer/install-state.js';
import { knownLocale, knownTimezone, resolveSpec, type SpecInput } from '../../src/installer/spec.js';
import { onCleanup, pendingCleanups, runCleanups } from '../../src/util/cleanup.js';
import { mountsUnderFrom, parseMountinfo } from '../../src/util/mounts.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2hc8Jz6qs6v0DrzFkq0CrWp9ncQ4cWwBFUe9VtbCHn test@host';
const defaults = { hostname: 'web1', timezone: 'UTC', sshKeys: [KEY], arch: 'x86_64' as const };

test('cleanup stack: newest first, released ones skipped, an undo runs once, a failing one does not stop the rest', async () => {
  const order: string[] = [];
  onCleanup('a', () => void order.push('a'));
  const b = onCleanup('b', () => void order.push('b'));
  onCleanup('c', () => {
    throw new Error('c broke');
  });
  const d = onCleanup('d', () => void order.push('d'));
  b.release();
  await d.undo();
  await d.undo();
  assert.deepEqual(pendingCleanups(), ['a', 'c']);
  const reports: string[] = [];
  await runCleanups((l) => reports.push(l));
  assert.deepEqual(order, ['d', 'a']);
  assert.deepEqual(reports, ['could not undo c: c broke']);
  assert.deepEqual(pendingCleanups(), []);
});

test('an interruption waits for undos their owner already started, and runs none twice', async () => {
  const order: string[] = [];
  let finish!: () => void;
  const slow = onCleanup('slow unmount', async () => {
    await new Promise<void>((r) => (finish = r));
    order.push('slow done');
  });
  const other = onCleanup('other', () => void order.push('other'));
  // The owner (a failing install) undoes its own registrations; the signal's run starts meanwhile.
  const owners = slow.undo();
  const interrupted = runCleanups();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ['other'], 'the signal undid what was still registered');
  let returned = false;
  void interrupted.then(() => (returned = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(returned, false, 'it does not return (and the process exit) while an undo is under way');
  finish();
  await interrupted;
  await owners;
  await other.undo();
  assert.deepEqual(order, ['other', 'slow done']);
});

test('what an undo starts itself is not undone by an interruption under way', async () => {
  const killed: string[] = [];
  let finish!: () => void;
  const mount = onCleanup('a mount', async () => {
    // The umount this undo runs registers itself as a child process would.
    const umount = onCleanup('umount (its own child)', () => void killed.push('umount'));
    await new Promise<void>((r) => (finish = r));
    umount.release();
  });
  const owners = mount.undo();
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(pendingCleanups(), [], 'the umount is not on the stack');
  const interrupted = runCleanups();
  finish();
  await Promise.all([owners, interrupted]);
  assert.deepEqual(killed, [], 'the interruption did not kill the umount');
});

test('mountinfo: mount points decoded, those under a directory innermost first, siblings with a common prefix left', () => {
  const info = [
    '22 1 0:21 / / rw - ext4 /dev/vda rw',
    '90 22 0:50 / /work/x/root\\040dir rw - tmpfs tmpfs rw',
    '91 90 0:51 / /work/x/root\\040dir/proc rw - proc proc rw',
    '92 90 0:52 / /work/x/root\\040dir/dev/pts rw - devpts devpts rw',
    '93 22 0:53 / /work/x/root\\040dir2 rw - tmpfs tmpfs rw',
  ].join('\n');
  const points = parseMountinfo(info);
  assert.equal(points[1], '/work/x/root dir');
  assert.deepEqual(mountsUnderFrom(points, '/work/x/root dir'), [
    '/work/x/root dir/dev/pts',
    '/work/x/root dir/proc',
    '/work/x/root dir',
  ]);
  assert.deepEqual(mountsUnderFrom(points, '/work/x/root dir/'), mountsUnderFrom(points, '/work/x/root dir'));
  assert.deepEqual(mountsUnderFrom(points, '/elsewhere'), []);
});

test("install status: the installer's own events decide; a stopped VM without a word is interrupted", () => {
  const stored: InstallStatus = { phase: 'installing', log: '/x/install.log', attempt: 1, updatedAt: 't' };
  const ev = (...e: object[]) => e.map((x) => JSON.stringify(x)).join('\n') + '\n';
  const steps = ev(
    { type: 'install-start' },
    { type: 'step-start', step: 'format' },
    { type: 'step-start', step: 'bootstrap' },
  );
  assert.deepEqual(deriveInstallStatus(stored, steps, true), { ...stored, step: 'bootstrap' });
  assert.deepEqual(deriveInstallStatus(stored, steps, false), {
    ...stored,
    phase: 'interrupted',
    step: 'bootstrap',
    reason: 'the VM stopped during the install',
  });
  const failed = steps + ev({ type: 'install-failed', step: 'bootstrap', reason: 'E: no space left' });
  assert.equal(deriveInstallStatus(stored, failed, true).phase, 'failed');
  assert.equal(deriveInstallStatus(stored, failed, true).reason, 'E: no space left');
  const done = steps + ev({ type: 'install-done', hostKeys: [] }, { type: 'handoff', status: 'kexec' });
  assert.equal(deriveInstallStatus(stored, done, false).phase, 'installed');
  // A torn last line (still being written) is not an event yet.
  assert.equal(deriveInstallStatus(stored, steps + '{"type":"install-do', true).phase, 'installing');
  // Whatever is final stays so.
  const installed = { ...stored, phase: 'installed' as const };
  assert.deepEqual(deriveInstallStatus(installed, failed, false), installed);
});

test('boot handoff: --stub always stays; an install boot stays at boot, but the installer may hand over', () => {
  assert.equal(bootSkipReason('console=ttyS0 vmstub.nokexec', true), 'vmstub.nokexec');
  assert.equal(bootSkipReason('console=ttyS0 vmstub.nokexec', false), 'vmstub.nokexec');
  assert.equal(bootSkipReason('quiet vmstub.install', true), 'vmstub.install');
  assert.equal(bootSkipReason('quiet vmstub.install', false), undefined);
  assert.equal(bootSkipReason('quiet vmstub.installer=1', true), undefined);
});

test('time zones and locales: checked against the zone database and the supported locales', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zones-'));
  mkdirSync(join(dir, 'Europe'));
  writeFileSync(join(dir, 'Europe', 'Berlin'), 'TZif2...');
  writeFileSync(join(dir, 'Europe', 'NotAZone'), 'plain text');
  assert.ok(knownTimezone('Europe/Berlin', dir));
  assert.ok(knownTimezone('Asia/Tokyo', dir), 'ICU knows it where the directory does not');
  assert.ok(!knownTimezone('Mars/Olympus', dir));
  assert.ok(!knownTimezone('../etc/passwd', dir));
  const supported = join(dir, 'SUPPORTED');
  writeFileSync(supported, 'de_DE.UTF-8 UTF-8\nen_US.UTF-8 UTF-8\nsr_RS@latin UTF-8\n');
  assert.ok(knownLocale('de_DE.UTF-8', supported));
  assert.ok(knownLocale('de_DE.utf8', supported));
  assert.ok(knownLocale('C.UTF-8', supported));
  assert.ok(knownLocale('C.utf8', join(dir, 'missing')));
  assert.ok(!knownLocale('de_US.UTF-8', supported), "not in glibc's list");
  const none = join(dir, 'missing');
  assert.ok(knownLocale('de_US.UTF-8', none), 'without the list: known language and territory');
  assert.ok(!knownLocale('xx_YY.UTF-8', none));
  assert.ok(!knownLocale('klingon', none));
});

test('spec: every problem reported at once, in one line naming the file and each field', () => {
  const input = {
    distro: 'almalinux9',
    filesystem: 'btrfs',
    timezone: 'Mars/Olympus',
    hostname: 'bad_host',
    users: [{ name: 'Bad Name' }, { name: 'ok', sshKeys: ['not a key'] }],
    mirror: 'ftp://x',
    colour: 'blue',
  } as unknown as SpecInput;
  let message = '';
  try {
    resolveSpec(input, defaults, 'web.yaml');
  } catch (e) {
    message = (e as Error).message;
  }
  assert.ok(!message.includes('\n'), message);
  assert.match(message, /^web\.yaml: 7 problems: /);
  for (const part of [
    /unknown field 'colour'/,
    /hostname: 'bad_host' is not a valid host name/,
    /timezone: 'Mars\/Olympus' is not in the time zone database/,
    /users\[0\]\.name: 'Bad Name'/,
    /users\[1\]\.sshKeys\[0\]: is not an SSH public key/,
    /filesystem: AlmaLinux 9[^;]* kernel cannot boot from btrfs \(xfs, ext4\)/,
    /mirror: 'ftp:\/\/x' is not an http\(s\) or file URL/,
  ])
    assert.match(message, part);
  assert.equal(resolveSpec({ distro: 'fedora42', filesystem: 'btrfs' }, defaults).filesystem, 'btrfs');
  assert.throws(
    () => resolveSpec({ distro: 'debian12', timezone: 'Mars/Olympus' }, defaults),
    /^VmstubError: spec: timezone: /,
  );
});
