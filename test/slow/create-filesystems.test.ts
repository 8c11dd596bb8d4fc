/**
 * The slow tier: Debian 12 from Debian's real mirror on an ext4 and on a Btrfs root (XFS, the default,
 * is the CI create's), each to a verified SSH login, grown live with `disk grow` (the guest agent grows
 * the root at once), stopped, grown while stopped (x-systemd.growfs grows the root at the next boot),
 * and started again through the handoff.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';

const MINUTES = 60_000;
const MiB = 2 ** 20;

for (const filesystem of ['ext4', 'btrfs'] as const) {
  describe(`vmstub create --distro debian12 --filesystem ${filesystem} (real mirror)`, () => {
    if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
    const box = new Sandbox();
    const name = `fs-${filesystem}`;
    const ssh = (...command: string[]) => box.sshRoot(name, command);
    const rootBytes = () => Number(ssh('findmnt', '-bno', 'SIZE', '/').trim());
    const consoleTail = () => box.consoleLog(name).split('\n').slice(-30).join('\n');

    before(() => useStub(box));
    after(() => box.cleanup());

    it(`installs onto ${filesystem} and logs in over SSH`, { timeout: 30 * MINUTES }, async () => {
      const r = await box.runAsync(['create', name, '--distro', 'debian12', '--filesystem', filesystem], {
        timeoutMs: 30 * MINUTES,
      });
      assert.equal(r.code, 0, `${r.stderr}\n${consoleTail()}`);
      assert.equal(ssh('findmnt', '-no', 'FSTYPE', '/').trim(), filesystem);
      assert.match(ssh('cat', '/etc/fstab'), new RegExp(`^UUID=\\S+ / ${filesystem} `, 'm'));
      assert.match(ssh('uname', '-r'), /^6\.1\.\d+-\d+-cloud-amd64$/m, "bookworm's kernel, not the stub's");
    });

    it('disk grow: the root grows at once under the running system', () => {
      const before = rootBytes();
      const r = box.run(['disk', 'grow', '--json', name, '+1G'], { timeoutMs: 300_000 });
      assert.equal(r.code, 0, r.stderr);
      const grown = JSON.parse(r.stdout) as { live: boolean; filesystem: string; detail?: string };
      assert.equal(grown.live, true);
      assert.equal(grown.filesystem, 'grown', grown.detail);
      const gained = rootBytes() - before;
      assert.ok(gained > 900 * MiB && gained <= 1024 * MiB, `the root grew by ${gained} bytes`);
    });

    it(
      'grown while stopped, it boots through the handoff with its root grown',
      { timeout: 20 * MINUTES },
      () => {
        const bootId = ssh('cat', '/proc/sys/kernel/random/boot_id').trim();
        const before = rootBytes();
        assert.equal(box.run(['stop', name], { timeoutMs: 300_000 }).code, 0);
        const grow = box.run(['disk', 'grow', name, '+512M']);
        assert.match(grow.stdout, /its root filesystem grows at the next boot\n$/, grow.stderr);
        const r = box.run(['start', '--wait-ssh=900', name], { timeoutMs: 960_000 });
        assert.equal(r.code, 0, `${r.stderr}\n${consoleTail()}`);
        assert.notEqual(ssh('cat', '/proc/sys/kernel/random/boot_id').trim(), bootId, 'a new boot');
        const gained = rootBytes() - before;
        assert.ok(gained > 400 * MiB, `x-systemd.growfs grew the root at boot: by ${gained} bytes`);
        assert.equal(ssh('findmnt', '-no', 'FSTYPE', '/').trim(), filesystem);
        assert.match(box.consoleLog(name), /vmstub-handoff|kexec/i);
      },
    );
  });
}
