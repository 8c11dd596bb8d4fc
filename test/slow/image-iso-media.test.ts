/**
 * The slow tier: the live ISO of image-build.test.ts's config, booted the ways npm test's SATA CD and
 * USB stick boots do not: by plain QEMU from an IDE CD drive on the i440FX PC, and by vmstub run from
 * its own (virtio-scsi) CD drive and written to a disk, each with SeaBIOS and with OVMF. Its stages are
 * cached in the test cache between runs.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { isRoot, testCacheDir } from '../helpers/fixture.js';
import { bootIso, writeConfig, writeHook } from '../helpers/image-config.js';
import { bootToLogin, DRIVE_SEEN } from '../helpers/plain-boot.js';

if (!isRoot) throw new Error('the image builder needs root');
const BOOT = 300_000;

describe('a live ISO in an IDE drive, in vmstub run, and written to a disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmstub-iso-media-'));
  const box = new Sandbox();
  const iso = join(dir, 'out', 'live.iso');
  before(() => {
    box.env.VMSTUB_CACHE = join(testCacheDir(), 'image-iso-media-cache');
    writeHook(dir, 'hook.sh', 'VMSTUB-HOOK-ONE');
    const config = writeConfig(dir, 'live.yaml', 'live', 'hook.sh', ['iso']);
    const r = box.run(['image', 'build', config, '--out', join(dir, 'out')], { timeoutMs: 20 * 60_000 });
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => {
    box.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test(
    'by plain QEMU from an IDE CD drive, with SeaBIOS and with OVMF',
    { timeout: BOOT + 60_000 },
    async () => {
      await Promise.all(
        (['seabios', 'ovmf'] as const).map(async (firmware) => {
          const console_ = await bootToLogin(iso, 'ide-cd', firmware, dir, BOOT);
          assert.match(console_, DRIVE_SEEN['ide-cd']);
          assert.match(console_, /VMSTUB-HOOK-ONE/);
        }),
      );
    },
  );
  test('by vmstub run from its CD drive with SeaBIOS', { timeout: BOOT + 60_000 }, async () => {
    // A firmware boot has no kernel of its own to check KVM with: with no probe on record, KVM is
    // chosen only once a Linux kernel booted under it (on this kind of host it hangs one).
    const probes = join(box.env.VMSTUB_CACHE!, 'probes');
    rmSync(probes, { recursive: true, force: true });
    await bootIso(box, 'iso-bios-cd', ['--iso', iso], BOOT);
    const shown = JSON.parse(box.run(['show', '--json', 'iso-bios-cd']).stdout) as { accel: string };
    if (shown.accel === 'kvm') {
      const record = JSON.parse(readFileSync(join(probes, 'kvm.json'), 'utf8')) as { kernelChecked: boolean };
      assert.equal(record.kernelChecked, true, 'KVM chosen without a kernel having booted under it');
    }
  });
  test('by vmstub run from its CD drive with OVMF', { timeout: BOOT + 60_000 }, () =>
    bootIso(box, 'iso-uefi-cd', ['--iso', iso, '--uefi'], BOOT),
  );
  for (const firmware of ['bios', 'uefi'] as const)
    test(
      `written to a disk, with ${firmware === 'bios' ? 'SeaBIOS' : 'OVMF'}`,
      { timeout: BOOT + 60_000 },
      () => {
        const disk = join(dir, `usb-${firmware}.img`);
        copyFileSync(iso, disk);
        return bootIso(
          box,
          `iso-${firmware}-disk`,
          ['--boot-disk', disk, ...(firmware === 'uefi' ? ['--uefi'] : [])],
          BOOT,
        );
      },
    );
});
