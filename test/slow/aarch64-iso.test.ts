/**
 * An aarch64 live ISO from the image builder on this x86_64 host (through qemu-user-static), read
 * back by xorriso (a UEFI entry and the ESP, no BIOS entry) and booted by vmstub run under
 * qemu-system-aarch64 with AAVMF to the hook's login banner. Too slow for npm test: the build takes
 * about ten minutes under emulation with nothing cached.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Sandbox } from '../helpers/cli.js';

const BUILD = 40 * 60_000;
const BOOT = 10 * 60_000;
const dir = mkdtempSync(join(tmpdir(), 'vmstub-arm-iso-'));
const out = join(dir, 'out');
let box: Sandbox;

before(() => {
  box = new Sandbox();
  writeFileSync(join(dir, 'hook.sh'), '#!/bin/sh\nset -eu\necho "VMSTUB-ARM-ISO" > "$1/etc/issue"\n');
  chmodSync(join(dir, 'hook.sh'), 0o755);
  writeFileSync(
    join(dir, 'arm.yaml'),
    [
      'name: armlive',
      'distro: debian12',
      'arch: aarch64',
      'packages: [less]',
      'hook: hook.sh',
      'users:',
      '  - name: alice',
      '    sudo: true',
      'formats: [iso]',
      '',
    ].join('\n'),
  );
});
after(() => {
  box.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test(
  'an aarch64 image builds a UEFI-only live ISO that boots under AAVMF',
  { timeout: BUILD + BOOT },
  async () => {
    const r = box.run(['image', 'build', join(dir, 'arm.yaml'), '--out', out, '--json'], {
      timeoutMs: BUILD,
    });
    assert.equal(r.code, 0, r.stderr);
    const iso = join(out, 'armlive.iso');
    const x = spawnSync(
      'xorriso',
      ['-indev', iso, '-report_el_torito', 'plain', '-report_system_area', 'plain'],
      {
        encoding: 'utf8',
      },
    );
    const report = x.stdout + x.stderr;
    assert.match(report, /^El Torito boot img :\s+1\s+UEFI\s/m);
    assert.doesNotMatch(report, /\sBIOS\s/);
    assert.match(report, /^GPT type GUID\s*:\s*2\s+28732ac11ff8d211ba4b00a0c93ec93b/m);

    const run = box.run([
      'run',
      '--detach',
      '--name',
      'armiso',
      '--memory',
      '1G',
      '--iso',
      iso,
      '--arch',
      'aarch64',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const state = JSON.parse(readFileSync(join(box.instanceDir('armiso'), 'state.json'), 'utf8')) as {
      qemuCommand?: string[];
    };
    const cmd = state.qemuCommand ?? [];
    assert.match(cmd[0] ?? '', /\/qemu-system-aarch64$/);
    assert.ok(
      cmd.some((a) => /^if=pflash,.*AAVMF_CODE\.fd$/.test(a)),
      'UEFI is implied for an aarch64 firmware boot',
    );
    await box.waitForConsole('armiso', "the live system's login banner", 'VMSTUB-ARM-ISO', BOOT);
    const log = box.consoleLog('armiso');
    assert.match(log, /root=live:CDLABEL=ARMLIVE/);
    assert.match(log, /console=ttyAMA0,115200n8/);
    box.run(['stop', '--force', 'armiso']);
  },
);
