/**
 * The slow tier: the live ISO of image-build.test.ts's config, booted by vmstub run the ways CI's one
 * SeaBIOS CD boot does not: from a CD drive with OVMF, and written to a disk (what dd to a USB stick
 * makes) with SeaBIOS and with OVMF. Its stages are cached in the test cache between runs.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { isRoot, testCacheDir } from '../helpers/fixture.js';
import { bootIso, writeConfig, writeHook } from '../helpers/image-config.js';

if (!isRoot) throw new Error('the image builder needs root');
const BOOT = 300_000;

describe('a live ISO booted with OVMF, and written to a disk', () => {
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

  test('from a CD drive with OVMF', { timeout: BOOT + 60_000 }, () =>
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
