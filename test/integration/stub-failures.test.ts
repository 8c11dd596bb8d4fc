/**
 * A stub that dies cannot report it: create must see it on the console and say so, instead of waiting
 * for events that never come. The "stub" here is a real kernel whose init exits at once (so the kernel
 * panics), booted by the real QEMU under TCG.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { buildBusyboxInitramfs, fixtureKernel } from '../helpers/fixture.js';

describe('a stub whose kernel dies', () => {
  const box = new Sandbox();
  after(() => {
    box.run(['stop', '--force', 'doomed']);
    box.cleanup();
  });

  it('create fails at once with the kernel panic, stops the VM and records it', { timeout: 300_000 }, () => {
    const kernel = fixtureKernel();
    const tree = join(box.home, 'tree');
    mkdirSync(join(tree, 'boot'), { recursive: true });
    execFileSync('cp', [kernel.vmlinuz, join(tree, 'boot', 'vmlinuz')]);
    buildBusyboxInitramfs(
      kernel,
      join(tree, 'boot', 'initrd.img'),
      '#!/bin/sh\necho init gives up\nexit 1\n',
      [],
    );
    symlinkSync('vmlinuz', join(tree, 'boot', 'kernel'));
    symlinkSync('initrd.img', join(tree, 'boot', 'initramfs'));
    mkdirSync(join(box.home, 'images'));
    execFileSync('mksquashfs', [
      tree,
      join(box.home, 'images', 'stub-x86_64.squashfs'),
      '-quiet',
      '-noappend',
    ]);

    const started = Date.now();
    const r = box.run(['create', 'doomed', '--distro', 'debian12', '--memory', '256M'], {
      timeoutMs: 240_000,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /vmstub: the stub's kernel died \(Kernel panic - not syncing: Attempted to kill init!.*\); see vmstub console doomed --log; to try again: vmstub resume doomed\n$/,
    );
    assert.ok(Date.now() - started < 120_000, 'found within seconds of the panic, not after a timeout');
    const [info] = JSON.parse(box.run(['list', '--json']).stdout) as {
      state: string;
      install: { phase: string; step: string };
    }[];
    assert.equal(info!.state, 'stopped', 'the dead VM was stopped');
    assert.equal(info!.install.phase, 'failed');
    assert.equal(info!.install.step, 'stub boot');
  });
});
