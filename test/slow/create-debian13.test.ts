/**
 * The slow tier: `vmstub create --distro debian13` from Debian's real mirror under TCG, to a verified
 * SSH login, and a second boot through the handoff. About fifteen minutes here; `vmstub distros` says
 * Debian 13 was verified against the real mirror only because this test recorded it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';

const MINUTES = 60_000;
const NAME = 'trixie1';

describe('vmstub create --distro debian13 (real mirror)', { skip: !isRoot && 'needs root' }, () => {
  const box = new Sandbox();
  const ssh = (...command: string[]) => box.sshRoot(NAME, command);

  before(() => useStub(box));
  after(() => box.cleanup());

  it('installs Debian 13 and logs in over SSH', { timeout: 45 * MINUTES }, async () => {
    const r = await box.runAsync(['create', NAME, '--distro', 'debian13', '--user', 'alice'], {
      timeoutMs: 45 * MINUTES,
    });
    assert.equal(r.code, 0, r.stderr);
    const osRelease = ssh('cat', '/etc/os-release');
    assert.match(osRelease, /^ID=debian$/m);
    assert.match(osRelease, /^VERSION_ID="13"$/m);
    assert.match(ssh('uname', '-r'), /^6\.12\.\d+.*-cloud-amd64$/m, "trixie's kernel, not the stub's");
    assert.equal(ssh('hostname').trim(), NAME);
    assert.equal(ssh('systemctl', 'is-active', 'ssh', 'systemd-networkd').trim(), 'active\nactive');
  });

  it('boots again through the handoff after stop and start', { timeout: 20 * MINUTES }, () => {
    const bootId = ssh('cat', '/proc/sys/kernel/random/boot_id').trim();
    assert.equal(box.run(['stop', NAME], { timeoutMs: 300_000 }).code, 0);
    const r = box.run(['start', '--wait-ssh=900', NAME], { timeoutMs: 960_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(ssh('cat', '/proc/sys/kernel/random/boot_id').trim(), bootId, 'a new boot');
    assert.match(box.consoleLog(NAME), /vmstub-handoff|kexec/i);
    recordEvidence(import.meta.url, [{ distro: 'debian13', source: 'real-mirror', reached: 'ssh' }]);
  });
});
