/**
 * The slow tier: `vmstub create --arch aarch64 --distro debian12` on this x86_64 host, from Debian's
 * real mirror: the root bootstrapped on the host through qemu-user-static, the rest in the aarch64
 * stub under TCG, to a verified SSH login; then a second boot through the stub's kexec handoff.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { recordEvidence } from '../helpers/evidence.js';
import { useStub } from '../helpers/stub.js';

const MINUTES = 60_000;
const NAME = 'arm1';

describe(
  'vmstub create --arch aarch64 --distro debian12 (real mirror)',
  { skip: !isRoot && 'needs root' },
  () => {
    const box = new Sandbox();
    const ssh = (...command: string[]) => box.sshRoot(NAME, command, 180_000);

    before(() => useStub(box, 'aarch64'));
    after(() => box.cleanup());

    it('installs Debian 12 for arm64 and logs in over SSH', { timeout: 90 * MINUTES }, async () => {
      const r = await box.runAsync(
        ['create', NAME, '--arch', 'aarch64', '--distro', 'debian12', '--explain', '--json'],
        { timeoutMs: 90 * MINUTES },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /bootstrap: on the host/, 'qemu-user-static runs the bootstrap on the host');
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        phases: Record<string, number>;
        seconds: number;
      };
      process.stdout.write(`# create arm64: ${result.seconds} s ${JSON.stringify(result.phases)}\n`);
      assert.equal(ssh('uname', '-m').trim(), 'aarch64');
      assert.match(
        ssh('uname', '-r'),
        /^6\.1\.\d+.*-cloud-arm64$/m,
        "bookworm's arm64 kernel, not the stub's",
      );
      assert.match(ssh('cat', '/etc/os-release'), /^VERSION_ID="12"$/m);
      assert.equal(ssh('systemctl', 'is-active', 'ssh', 'systemd-networkd').trim(), 'active\nactive');
      recordEvidence(import.meta.url, [
        { distro: 'debian12', source: 'real-mirror', reached: 'ssh', arch: 'aarch64' },
      ]);
    });

    it('boots again through the kexec handoff after stop and start', { timeout: 30 * MINUTES }, () => {
      const bootId = ssh('cat', '/proc/sys/kernel/random/boot_id').trim();
      const stop = box.run(['stop', NAME], { timeoutMs: 300_000 });
      assert.equal(stop.code, 0, stop.stderr);
      assert.match(stop.stdout, /powered off/, 'the guest agent powers it off: no power button it sees');
      const started = Date.now();
      const r = box.run(['start', '--wait-ssh=1200', NAME], { timeoutMs: 1260_000 });
      assert.equal(r.code, 0, r.stderr);
      process.stdout.write(`# start arm64 to SSH: ${Math.round((Date.now() - started) / 1000)} s\n`);
      assert.notEqual(ssh('cat', '/proc/sys/kernel/random/boot_id').trim(), bootId, 'a new boot');
      assert.match(box.consoleLog(NAME), /vmstub-handoff: handing over/);
    });
  },
);
