/**
 * The boot handoff for real: the stub boots with a data disk (or share) prepared by the test and
 * kexecs into the fixture installed system, or boots on and changes nothing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeEvents, type StubEvent } from '../../src/events/protocol.js';
import { guestExec } from '../../src/vm/qga.js';
import { processEnded, processesUsing, Sandbox, waitFor } from '../helpers/cli.js';
import { INSTALLED_MARKER, filesystemImage, installedTree } from '../helpers/installed.js';
import { buildStub, type StubBuild } from '../helpers/stub.js';
import { fixtureKernel, isRoot } from '../helpers/fixture.js';

let box: Sandbox;
let stub: StubBuild;
const work = mkdtempSync(join(tmpdir(), 'vmstub-handoff-'));
const BOOT = 180_000;

before(() => {
  box = new Sandbox();
  stub = buildStub(box);
});
after(() => {
  box.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function boot(name: string, args: string[]): void {
  const r = box.run(['run', '--detach', '--name', name, '--memory', '1G', ...args, stub.image]);
  assert.equal(r.code, 0, r.stderr);
}

function events(name: string) {
  const f = join(box.instanceDir(name), 'events.ndjson');
  return existsSync(f) ? decodeEvents<StubEvent>(readFileSync(f, 'utf8')).events : [];
}

/** Waits for the fixture system's marker and returns the command line it was given. */
async function handedOver(name: string): Promise<string> {
  await box.waitForConsole(name, `${name} to hand over`, INSTALLED_MARKER, BOOT);
  const line = await waitFor(
    'its command line',
    () => /INSTALLED-CMDLINE: (.*)\r?\n/.exec(box.consoleLog(name))?.[1],
    30_000,
  );
  await waitFor(
    `${name} to power off`,
    () => box.run(['show', '--json', name]).stdout.includes('"state": "stopped"'),
    60_000,
  );
  return line;
}

const stubShell = (name: string) =>
  box.waitForConsole(name, `${name}'s autologin`, '(automatic login)', BOOT);

describe('an installed system on the data disk', () => {
  for (const fsType of ['xfs', 'btrfs'] as const) {
    test(
      `${fsType}: the stub kexecs into it, with root by UUID and the console kept`,
      { timeout: 300_000 },
      async () => {
        const disk = join(work, `${fsType}.img`);
        const uuid = filesystemImage(fsType, installedTree(fsType), disk);
        const before = sha256(disk);
        boot(`kx-${fsType}`, ['--data', disk]);
        const cmdline = await handedOver(`kx-${fsType}`);
        assert.equal(cmdline.trim(), `root=UUID=${uuid} rootfstype=${fsType} ro console=ttyS0,115200n8`);
        const handoff = events(`kx-${fsType}`).find((e) => e.type === 'handoff');
        assert.equal(handoff?.status, 'kexec');
        assert.equal(
          handoff?.status === 'kexec' && handoff.kernel,
          `/boot/vmlinuz-${fixtureKernel().version}`,
        );
        assert.equal(sha256(disk), before, 'the handoff wrote nothing to the installed system');
      },
    );
  }

  test(
    '--handoff host: the stub sends the kernel to the host, which boots it directly; the next start sends only word that it is unchanged',
    { timeout: 600_000 },
    async () => {
      const disk = join(work, 'host.img');
      const uuid = filesystemImage('xfs', installedTree('xfs'), disk);
      const before = sha256(disk);
      boot('hb', ['--data', disk, '--handoff', 'host']);
      const cmdline = await handedOver('hb');
      assert.equal(cmdline.trim(), `root=UUID=${uuid} rootfstype=xfs ro console=ttyS0,115200n8`);
      const first = events('hb').filter((e) => e.type === 'handoff');
      assert.equal(first.length, 1);
      assert.ok(first[0]?.status === 'host-boot' && !first[0].unchanged, JSON.stringify(first[0]));
      assert.match(box.consoleLog('hb'), /vmstub: booting \/boot\/vmlinuz-\S+ directly, with: root=UUID=/);
      const kept = join(box.instanceDir('hb'), 'direct-boot');
      assert.equal(statSync(kept).mode & 0o777, 0o700);
      assert.ok(readFileSync(join(kept, 'kernel')).equals(readFileSync(fixtureKernel().vmlinuz)));

      assert.equal(box.run(['start', 'hb']).code, 0);
      await waitFor(
        'the second direct boot',
        () => (box.consoleLog('hb').split(INSTALLED_MARKER).length > 2 ? true : undefined),
        BOOT,
      );
      const again = events('hb').find((e) => e.type === 'handoff');
      assert.ok(again?.status === 'host-boot' && again.unchanged, JSON.stringify(again));
      assert.match(box.consoleLog('hb'), /directly \(the copy the host had\)/);
      await waitFor(
        'hb to power off',
        () => box.run(['show', '--json', 'hb']).stdout.includes('"state": "stopped"'),
        60_000,
      );
      assert.equal(sha256(disk), before, 'the handoff wrote nothing to the installed system');
    },
  );

  test(
    '--handoff host: a stop asked while the stub hands over is a stop, not a direct boot of the installed kernel',
    { timeout: 600_000 },
    async () => {
      const disk = join(work, 'stop-at-handoff.img');
      filesystemImage('xfs', installedTree('xfs'), disk);
      boot('hs', ['--data', disk, '--handoff', 'host']);
      const dir = box.instanceDir('hs');
      const state = () =>
        JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as {
          qemuPid: number;
          supervisorPid: number;
        };
      const { qemuPid, supervisorPid } = state();
      // Held, the supervisor cannot act on the stub's power-off until the stop has been asked: the
      // one order of the two that a test can make happen every time. (The stub boots quiet: the
      // console pipe holds what it prints meanwhile.)
      process.kill(supervisorPid, 'SIGSTOP');
      try {
        await waitFor('the stub to send the kernel and power off', () => processEnded(qemuPid), BOOT);
        const stop = box.runAsync(['stop', '--json', '--timeout', '30', 'hs'], { timeoutMs: 120_000 });
        await waitFor('the stop to be asked', () => existsSync(join(dir, 'stop-requested')), 30_000);
        process.kill(supervisorPid, 'SIGCONT');
        const r = await stop;
        assert.equal(r.code, 0, r.stderr);
        assert.equal((JSON.parse(r.stdout) as { outcome: string }).outcome, 'powered-off');
      } finally {
        process.kill(supervisorPid, 'SIGCONT');
      }
      assert.doesNotMatch(box.consoleLog('hs'), /vmstub: booting \/boot\/vmlinuz-\S+ directly/);
      assert.match(box.run(['show', 'hs']).stdout, /^state:\s+stopped$/m);
      assert.deepEqual(processesUsing(dir), [], 'no QEMU left');
      assert.ok(!existsSync(join(dir, 'stop-requested')), 'the request went with the run');
    },
  );

  test('with --stub (vmstub.nokexec) the stub stays, for repair', { timeout: 300_000 }, async () => {
    const disk = join(work, 'xfs.img');
    boot('nokexec', ['--data', disk, '--stub']);
    await stubShell('nokexec');
    assert.doesNotMatch(box.consoleLog('nokexec'), new RegExp(INSTALLED_MARKER));
    box.run(['stop', '--force', 'nokexec']);
  });
});

describe('nothing installed', () => {
  test(
    "an empty disk: the stub's shell, the disk untouched, the handoff not even started",
    { timeout: 300_000 },
    async () => {
      const disk = join(work, 'empty.img');
      assert.equal(box.run(['allocate', disk, '256M']).code, 0);
      const before = sha256(disk);
      boot('empty', ['--data', disk]);
      await stubShell('empty');
      box.run(['stop', 'empty']);
      assert.equal(sha256(disk), before);
      assert.deepEqual(events('empty'), []);
    },
  );

  test(
    'a filesystem without a kernel: the handoff looks, finds nothing, writes nothing',
    { timeout: 300_000 },
    async () => {
      const disk = join(work, 'nokernel.img');
      filesystemImage('ext4', undefined, disk, 128 * 1024 * 1024);
      const before = sha256(disk);
      boot('nokernel', ['--data', disk]);
      await stubShell('nokernel');
      box.run(['stop', 'nokernel']);
      assert.equal(sha256(disk), before);
      assert.equal(events('nokernel').find((e) => e.type === 'handoff')?.status, 'nothing-installed');
    },
  );
});

describe('shares and encryption', { skip: !isRoot && 'virtiofs needs root here' }, () => {
  test('an installed system on a virtiofs share tagged fs', { timeout: 300_000 }, async () => {
    boot('share', ['--share', installedTree('virtiofs')]);
    const cmdline = await handedOver('share');
    assert.equal(cmdline.trim(), 'root=fs rootfstype=virtiofs ro console=ttyS0,115200n8');
  });

  test(
    'LUKS: opened read-only with the passphrase the host passes through fw_cfg',
    { timeout: 600_000 },
    async () => {
      // The stub doubles as the tool that makes the encrypted disk (this host has no device-mapper).
      const disk = join(work, 'luks.img');
      assert.equal(box.run(['allocate', disk, '512M']).code, 0);
      boot('luks-tool', ['--data', disk, '--share', `${installedTree('xfs')}:src`]);
      await stubShell('luks-tool');
      const qga = join(box.instanceDir('luks-tool'), 'qga.sock');
      const script = [
        'set -e',
        'printf secret | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file=- /dev/vdb',
        'printf secret | cryptsetup open --key-file=- /dev/vdb fixture',
        'mkfs.xfs -q /dev/mapper/fixture',
        'mkdir -p /mnt/src /mnt/dst',
        'mount -t virtiofs src /mnt/src',
        'mount /dev/mapper/fixture /mnt/dst',
        'cp -a /mnt/src/. /mnt/dst/',
        'umount /mnt/dst /mnt/src',
        'cryptsetup close fixture',
        'blkid -p -s UUID -o value /dev/vdb',
      ].join('\n');
      const made = await guestExec(qga, '/bin/sh', ['-c', script], 300_000);
      assert.equal(made.exitcode, 0, made.stderr);
      const luksUuid = made.stdout.trim();
      box.run(['stop', 'luks-tool']);

      boot('luks', ['--data', disk, '--fw-cfg', 'opt/org.vmstub/luks-passphrase=secret']);
      const cmdline = await handedOver('luks');
      assert.match(
        cmdline,
        new RegExp(
          `^root=UUID=[0-9a-f-]+ rootfstype=xfs ro rd\\.luks\\.uuid=${luksUuid} console=ttyS0,115200n8$`,
        ),
      );
    },
  );
});
