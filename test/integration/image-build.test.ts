/**
 * vmstub image build for real: a small Debian 12 image from a config and a hook (from Debian's real
 * mirror), its system image booted by vmstub run and its ISO by plain QEMU from a SATA CD drive and as a
 * USB stick, each with SeaBIOS and with OVMF (the rest: test/slow/image-iso-media.test.ts), a hook
 * change that rebuilds only the later stages, and builds that fail: a hook that exits non-zero, an
 * output directory that fills up, an ISO bigger than its medium.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { faultyMirror, RELEASE_FILES, type FaultyMirror } from '../helpers/fault-proxy.js';
import { isRoot } from '../helpers/fixture.js';
import { bootToLogin, DRIVE_SEEN, type Drive, type Firmware } from '../helpers/plain-boot.js';
import { writeConfig as writeConfigIn, writeHook as writeHookIn } from '../helpers/image-config.js';

interface BuildJson {
  outputs: { format: string; path: string; bytes: number }[];
  stages: { name: string; hit: boolean; changed: string[]; skipped?: boolean }[];
}

const BUILD_TIMEOUT = 20 * 60 * 1000;
const BOOT = 300_000;
const dir = mkdtempSync(join(tmpdir(), 'vmstub-image-'));
const out = join(dir, 'out');
let box: Sandbox;
/** Debian's mirror with its Release files as first fetched: the rebuilds below expect their bootstrap cached. */
let mirror: FaultyMirror;

const writeHook = (name: string, marker: string, exit = 0) => writeHookIn(dir, name, marker, exit);
const writeConfig = (file: string, name: string, hook: string, formats: string[], packages?: string[]) =>
  writeConfigIn(dir, file, name, hook, formats, packages, [
    `mirror: ${mirror.url}/debian`,
    `securityMirror: ${mirror.url}/debian-security`,
  ]);

/** Not box.run: this process serves the mirror, and a synchronous build would find it silent. */
function build(config: string, outDir = out, extra: string[] = []) {
  return box.runAsync(['image', 'build', config, '--out', outDir, '--json', ...extra], {
    timeoutMs: BUILD_TIMEOUT,
  });
}

const unsquash = (image: string, path: string) =>
  spawnSync('unsquashfs', ['-cat', image, path], { encoding: 'utf8' }).stdout;

before(async () => {
  mirror = await faultyMirror('http://deb.debian.org/', [], {
    freeze: RELEASE_FILES,
  });
  box = new Sandbox();
  // A cache of its own: the first build is cold, so what the later ones take from it is known.
  box.env.VMSTUB_CACHE = join(box.home, 'cache');
  writeHook('hook.sh', 'VMSTUB-HOOK-ONE');
});
after(async () => {
  await mirror.close();
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('an image from a config and a hook', () => {
  let first: BuildJson;
  const config = () => join(dir, 'live.yaml');

  test(
    'builds a checked squashfs and a hybrid ISO, every stage built',
    { timeout: BUILD_TIMEOUT },
    async () => {
      writeConfig('live.yaml', 'live', 'hook.sh', ['system', 'iso']);
      const r = await build(config());
      assert.equal(r.code, 0, r.stderr);
      first = JSON.parse(r.stdout) as BuildJson;
      assert.deepEqual(
        first.stages.map((s) => [s.name, s.hit]),
        [
          ['bootstrap', false],
          ['packages', false],
          ['root', false],
          ['iso', false],
        ],
      );
      assert.deepEqual(readdirSync(out).sort(), ['live.initrd', 'live.iso', 'live.squashfs', 'live.vmlinuz']);
      const squashfs = join(out, 'live.squashfs');
      assert.match(unsquash(squashfs, 'etc/issue'), /VMSTUB-HOOK-ONE/);
      assert.match(unsquash(squashfs, 'etc/shadow'), /^root:[!*]/m, 'root is locked');
      assert.match(unsquash(squashfs, 'etc/group'), /^sudo:x:\d+:alice$/m);
      assert.match(
        unsquash(squashfs, 'etc/group'),
        /^builders:x:\d+:alice$/m,
        'a group the system lacked, made',
      );
      assert.match(unsquash(squashfs, 'etc/group'), /^adm:x:\d+:alice$/m);
      assert.match(unsquash(squashfs, 'etc/passwd'), /^alice:x:\d+:\d+::\/home\/alice:\/bin\/sh$/m);
      assert.equal(unsquash(squashfs, 'etc/machine-id'), '', 'a machine-id of its own on every boot');
      assert.match(
        unsquash(squashfs, 'etc/apt/sources.list.d/debian.sources'),
        /URIs: http:\/\/deb.debian.org\/debian/,
      );
      // xorriso reports the volume on stderr, the boot records on stdout.
      const xorriso = spawnSync(
        'xorriso',
        ['-indev', join(out, 'live.iso'), '-report_el_torito', 'plain', '-report_system_area', 'plain'],
        { encoding: 'utf8' },
      );
      const report = xorriso.stdout + xorriso.stderr;
      assert.match(report, /El Torito boot img :\s+1\s+BIOS/);
      assert.match(report, /El Torito boot img :\s+2\s+UEFI/);
      assert.match(report, /Volume id\s+: 'LIVE'/);
      const boot = spawnSync('unsquashfs', ['-l', squashfs, 'boot'], { encoding: 'utf8' }).stdout;
      assert.match(boot, /boot\/vmlinuz-/);
      assert.doesNotMatch(boot, /initrd\.img/, 'the live initramfs is beside the squashfs, not in it too');
    },
  );

  test(
    "vmstub run boots the system image to the hook's login banner",
    { timeout: BOOT + 60_000 },
    async () => {
      const r = box.run(['run', '--detach', '--name', 'img-system', join(out, 'live.squashfs')]);
      assert.equal(r.code, 0, r.stderr);
      await box.waitForConsole('img-system', 'the system image to log in', 'VMSTUB-HOOK-ONE', BOOT);
      await box.waitForConsole('img-system', 'its login prompt', 'live login:', 60_000);
      box.run(['stop', '--force', 'img-system']);
    },
  );

  // The ISO as users attach one, by plain QEMU: each drive kind with each firmware, two at a time (one
  // vCPU each). An IDE drive, the ISO written to a disk, and vmstub run --iso are in the slow tier
  // (test/slow/image-iso-media.test.ts).
  const bootPair = async (boots: [Drive, Firmware][]): Promise<void> => {
    await Promise.all(
      boots.map(async ([drive, firmware]) => {
        const console_ = await bootToLogin(join(out, 'live.iso'), drive, firmware, dir, BOOT);
        assert.match(console_, DRIVE_SEEN[drive], `the ${drive} was not seen`);
        assert.match(console_, /root=live:CDLABEL=LIVE/);
        assert.match(console_, /VMSTUB-HOOK-ONE/, "the hook's login banner");
      }),
    );
  };
  test(
    'the ISO boots from a SATA CD drive with SeaBIOS, and as a USB stick with OVMF',
    { timeout: BOOT + 60_000 },
    () =>
      bootPair([
        ['sata-cd', 'seabios'],
        ['usb-stick', 'ovmf'],
      ]),
  );
  test(
    'the ISO boots from a SATA CD drive with OVMF, and as a USB stick with SeaBIOS',
    { timeout: BOOT + 60_000 },
    () =>
      bootPair([
        ['sata-cd', 'ovmf'],
        ['usb-stick', 'seabios'],
      ]),
  );

  test(
    "a changed hook: --explain names it, and the build starts from the hook's stage",
    { timeout: BUILD_TIMEOUT },
    async () => {
      writeHook('hook.sh', 'VMSTUB-HOOK-TWO');
      const explain = await box.runAsync(['image', 'build', config(), '--explain'], { timeoutMs: 60_000 });
      assert.equal(explain.code, 0, explain.stderr);
      const lines = explain.stdout.trim().split('\n');
      assert.match(lines[0]!, /^bootstrap: hit/);
      assert.match(lines[1]!, /^packages: hit/);
      assert.match(lines[2]!, /^root: miss \(\w+\): hook changed$/);
      assert.match(lines[3]!, /^iso: miss \(\w+\): the root stage changed$/);
      const r = await build(config());
      assert.equal(r.code, 0, r.stderr);
      const second = JSON.parse(r.stdout) as BuildJson;
      assert.deepEqual(
        second.stages.map((s) => [s.name, s.hit]),
        [
          ['bootstrap', true],
          ['packages', true],
          ['root', false],
          ['iso', false],
        ],
      );
      assert.match(unsquash(join(out, 'live.squashfs'), 'etc/issue'), /VMSTUB-HOOK-TWO/);
    },
  );

  test(
    'an ISO bigger than its medium: one clear line, and nothing delivered',
    { timeout: 120_000 },
    async () => {
      // The image above, every stage cached; on a 100 MiB medium.
      const config = writeConfigIn(
        dir,
        'small-medium.yaml',
        'live',
        'hook.sh',
        ['system', 'iso'],
        undefined,
        [`mirror: ${mirror.url}/debian`, `securityMirror: ${mirror.url}/debian-security`, 'medium: 100M'],
      );
      const smallOut = join(dir, 'small-medium-out');
      const r = await build(config, smallOut);
      assert.equal(r.code, 2, r.stderr);
      assert.match(
        r.stderr.trim().split('\n').pop()!,
        /^vmstub: the ISO is 1\d\d\.\d MiB, more than the medium holds \(100 MiB, medium: 100M\); nothing was delivered/,
      );
      assert.deepEqual(existsSync(smallOut) ? readdirSync(smallOut) : [], []);
    },
  );

  test(
    'a full output directory: one clear line, and no output file left',
    { skip: !isRoot && 'mounting a tmpfs needs root', timeout: 120_000 },
    async () => {
      const small = join(dir, 'small');
      mkdirSync(small);
      assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', small]).status, 0);
      try {
        const r = await build(config(), small);
        assert.notEqual(r.code, 0);
        const last = r.stderr.trim().split('\n').pop()!;
        assert.match(last, /^vmstub: .*no space left in .*small/);
        assert.deepEqual(readdirSync(small), [], 'nothing half-written is left');
      } finally {
        spawnSync('umount', [small]);
      }
    },
  );

  test(
    'a hook that fails: the build fails naming the hook and its log, and delivers nothing',
    { timeout: BUILD_TIMEOUT },
    async () => {
      writeHook('broken-hook.sh', 'never', 3);
      // The same bootstrap as the image above (taken from the cache), no packages: the hook comes soon.
      const config = writeConfig('broken.yaml', 'broken', 'broken-hook.sh', ['system', 'iso'], []);
      const failedOut = join(dir, 'broken-out');
      const r = await build(config, failedOut);
      assert.notEqual(r.code, 0);
      const last = r.stderr.trim().split('\n').pop()!;
      assert.match(
        last,
        /the hook \S*broken-hook\.sh exited with status 3: giving up \(log: \S+broken-x86_64\.log\)/,
      );
      assert.deepEqual(existsSync(failedOut) ? readdirSync(failedOut) : [], []);
    },
  );
});
