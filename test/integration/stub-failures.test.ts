/**
 * A stub that dies cannot report it: create must see it on the console and say so, instead of waiting
 * for events that never come. The "stubs" here are a real kernel with a busybox init that exits (so the
 * kernel panics), booted by the real QEMU under TCG.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { buildBusyboxInitramfs, fixtureKernel } from '../helpers/fixture.js';

/** Makes images/stub-x86_64.squashfs in the sandbox: the fixture kernel with this init. */
function installStub(box: Sandbox, init: string, modules: string[]): void {
  const kernel = fixtureKernel();
  const tree = join(box.home, 'tree');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, 'boot'), { recursive: true });
  execFileSync('cp', [kernel.vmlinuz, join(tree, 'boot', 'vmlinuz')]);
  buildBusyboxInitramfs(kernel, join(tree, 'boot', 'initrd.img'), init, modules);
  symlinkSync('vmlinuz', join(tree, 'boot', 'kernel'));
  symlinkSync('initrd.img', join(tree, 'boot', 'initramfs'));
  mkdirSync(join(box.home, 'images'), { recursive: true });
  execFileSync('mksquashfs', [tree, join(box.home, 'images', 'stub-x86_64.squashfs'), '-quiet', '-noappend']);
}

function installInfo(box: Sandbox, name: string) {
  const list = JSON.parse(box.run(['list', '--json']).stdout) as {
    name: string;
    state: string;
    install: { phase: string; step: string };
  }[];
  const info = list.find((i) => i.name === name);
  assert.ok(info, `${name} is listed`);
  return info;
}

describe('a stub whose kernel dies', () => {
  const box = new Sandbox();
  after(() => {
    for (const name of ['doomed', 'shaky']) box.run(['stop', '--force', name]);
    box.cleanup();
  });

  it(
    'create boots it once more, then fails with the kernel panic, stops the VM and records it',
    { timeout: 300_000 },
    () => {
      installStub(box, '#!/bin/sh\necho init gives up\nexit 1\n', []);
      const started = Date.now();
      const r = box.run(
        ['create', 'doomed', '--distro', 'debian12', '--memory', '256M', '--bootstrap-on', 'guest'],
        {
          timeoutMs: 240_000,
        },
      );
      assert.equal(r.code, 1, r.stderr);
      const panic = /Kernel panic - not syncing: Attempted to kill init!/.source;
      assert.match(
        r.stderr,
        new RegExp(
          `^vmstub: the stub's kernel died \\(${panic}.*\\) before the install began; booting it once more$`,
          'm',
        ),
      );
      assert.match(
        r.stderr,
        new RegExp(
          `vmstub: the stub's kernel died \\(${panic}.*\\); see vmstub console doomed --log; to try again: vmstub resume doomed\\n$`,
        ),
      );
      assert.equal(r.stderr.match(/booting it once more/g)?.length, 1, 'booted again once, not more');
      const console = box.run(['console', 'doomed', '--log']).stdout;
      assert.equal(console.match(/init gives up/g)?.length, 2, 'the console log shows both boots');
      assert.ok(Date.now() - started < 180_000, 'found within seconds of each panic, not after a timeout');
      const info = installInfo(box, 'doomed');
      assert.equal(info.state, 'stopped', 'the dead VM was stopped');
      assert.equal(info.install.phase, 'failed');
      assert.equal(info.install.step, 'stub boot');
    },
  );

  it('a stub that dies on its first boot only: the second boot is followed', { timeout: 300_000 }, () => {
    // First boot: leave a mark on the data disk, then die. Second boot: start an install and fail it,
    // as a real stub's installer would report a failure.
    const init = `#!/bin/sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in virtio_pci virtio_blk virtio_console; do modprobe $m; done
for d in /sys/block/vd*; do [ "$(cat $d/serial)" = data ] && disk=/dev/$(basename $d); done
for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = org.vmstub.events ] && events=/dev/$(basename $p); done
if [ "$(head -c 6 $disk)" != MARKED ]; then
  echo first boot dies; printf MARKED | dd of=$disk conv=notrunc 2>/dev/null; sync; exit 1
fi
echo second boot lives
printf '{"type":"install-start","distro":"debian12","hostname":"shaky","steps":[]}\\n' > $events
printf '{"type":"install-failed","step":"fixture","reason":"the second boot reported","log":"-"}\\n' > $events
exec sh
`;
    installStub(box, init, ['virtio_pci', 'virtio_blk', 'virtio_console']);
    const r = box.run(
      ['create', 'shaky', '--distro', 'debian12', '--memory', '256M', '--bootstrap-on', 'guest'],
      {
        timeoutMs: 240_000,
      },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /kernel died \(Kernel panic.*\) before the install began; booting it once more\n/);
    assert.match(r.stderr, /install failed at step fixture: the second boot reported/);
    const log = box.run(['console', 'shaky', '--log']).stdout;
    assert.ok(log.indexOf('first boot dies') < log.indexOf('second boot lives'), log);
    const info = installInfo(box, 'shaky');
    assert.equal(info.install.phase, 'failed');
    assert.equal(info.install.step, 'fixture', 'the failure the second boot reported is recorded');
  });
});
