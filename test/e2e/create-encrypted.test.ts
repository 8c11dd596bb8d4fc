/**
 * An encrypted root, for real: `vmstub create --encrypt` of Debian 12 from Debian's mirror on ext4 (the
 * one ext4 create of npm test), to SSH, then stopped and started with the passphrase the host keeps
 * (unattended); then the host forgets it (vmstub key forget), and the next start waits at the console's
 * prompt: a wrong passphrase typed through `vmstub console` is refused, the right one boots it to SSH.
 * A clone given the source's passphrase is refused (the clone itself is in the slow tier).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox, VMSTUB, waitFor } from '../helpers/cli.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');

const CREATE_TIMEOUT = 40 * 60_000;
const BOOT_TIMEOUT = 10 * 60_000;
const HOST_KEPT = 'correct horse battery staple';

describe('an encrypted Debian 12 root (real mirror)', () => {
  const box = new Sandbox();
  const keyFile = (name: string, passphrase: string) => {
    const file = join(box.home, name);
    // The first line is the passphrase: the newline is not part of it.
    writeFileSync(file, `${passphrase}\n`, { mode: 0o600 });
    return file;
  };
  const consoleTail = (name: string) =>
    `console (last 40 lines):\n${box.consoleLog(name).split('\n').slice(-40).join('\n')}`;
  /** Every file of the instance that could have the passphrase in it: logs, events, spec, definition. */
  const filesHolding = (name: string, secret: string) =>
    readdirSync(box.instanceDir(name), { recursive: true, withFileTypes: true })
      // The disk is encrypted (and too big to read whole); the passphrase file is where it is kept.
      .filter((e) => e.isFile() && e.name !== 'luks-passphrase' && !/\.(img|qcow2)$/.test(e.name))
      .map((e) => join(e.parentPath, e.name))
      .filter((f) => readFileSync(f).includes(secret));
  const create = async (name: string, args: string[]) => {
    const r = await box.runAsync(
      ['create', name, '--distro', 'debian12', '--filesystem', 'ext4', '--encrypt', ...args],
      { timeoutMs: CREATE_TIMEOUT },
    );
    assert.equal(r.code, 0, `${r.stderr}\n${consoleTail(name)}`);
  };

  before(() => useStub(box));
  after(() => box.cleanup());

  it(
    'create --encrypt --filesystem ext4 --key-file: to SSH, ext4 inside LUKS2, the passphrase with the instance alone',
    {
      timeout: CREATE_TIMEOUT,
    },
    async () => {
      await create('enc1', ['--key-file', keyFile('enc1.key', HOST_KEPT)]);
      const lsblk = box.sshRoot('enc1', ['lsblk', '--list', '-no', 'NAME,TYPE,FSTYPE,MOUNTPOINTS']);
      assert.match(lsblk, /^vmstub-root\s+crypt\s+ext4\s+\/$/m, lsblk);
      assert.match(box.sshRoot('enc1', ['cryptsetup', 'status', 'vmstub-root']), /type:\s+LUKS2/);
      const kept = join(box.instanceDir('enc1'), 'luks-passphrase');
      assert.equal(readFileSync(kept, 'utf8'), HOST_KEPT);
      assert.equal(statSync(kept).mode & 0o777, 0o600);
      assert.deepEqual(filesHolding('enc1', HOST_KEPT), [], 'the passphrase is in no log, event or spec');
      recordEvidence(import.meta.url, [
        {
          distro: 'debian12',
          source: 'real-mirror',
          reached: 'ssh',
          what: 'an encrypted root (LUKS2, ext4) unlocked by the host',
        },
      ]);
    },
  );

  it(
    "stop, start: the handoff and the system's initramfs open it with the host's passphrase",
    {
      timeout: BOOT_TIMEOUT,
    },
    async () => {
      assert.equal(box.run(['stop', 'enc1']).code, 0);
      const from = box.consoleLog('enc1').length;
      const r = await box.runAsync(['start', 'enc1', `--wait-ssh=${BOOT_TIMEOUT / 1000 - 60}`], {
        timeoutMs: BOOT_TIMEOUT,
      });
      assert.equal(r.code, 0, `${r.stderr}\n${consoleTail('enc1')}`);
      const boot = box.consoleLog('enc1').slice(from);
      assert.doesNotMatch(boot, /type its passphrase|Passphrase for the encrypted root/, 'no one was asked');
      assert.match(box.sshRoot('enc1', ['findmnt', '-no', 'SOURCE', '/']), /\/dev\/mapper\/vmstub-root/);
      box.run(['stop', '--force', 'enc1']);
    },
  );

  it(
    'key forget: the next start asks on the console; vmstub console types a wrong passphrase, then the right one',
    {
      timeout: BOOT_TIMEOUT,
    },
    async () => {
      const wrong = box.run([
        'key',
        'keep',
        'enc1',
        '--key-file',
        keyFile('wrong.key', 'not the passphrase'),
      ]);
      assert.equal(wrong.code, 2);
      assert.match(
        wrong.stderr,
        /^vmstub: that passphrase does not open enc1's root; nothing was changed\n$/,
      );
      const forget = box.run(['key', 'forget', 'enc1']);
      assert.equal(forget.code, 0, forget.stderr);
      assert.ok(
        !readdirSync(box.instanceDir('enc1')).includes('luks-passphrase'),
        'the host keeps no passphrase',
      );
      const start = box.run(['start', 'enc1']);
      assert.equal(start.code, 0, start.stderr);
      assert.match(
        start.stderr,
        /enc1's root is encrypted: type its passphrase at the console \(vmstub console enc1\)/,
      );

      const console_ = spawn(process.execPath, [VMSTUB, 'console', 'enc1'], {
        env: box.env,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let seen = '';
      console_.stdout.on('data', (d: Buffer) => (seen += d.toString('utf8')));
      try {
        await waitFor('the passphrase prompt', () => seen.includes('Passphrase: '), BOOT_TIMEOUT);
        console_.stdin.write('not the passphrase\n');
        await waitFor('the refusal', () => /does not open .* \(2 tries left\)/.test(seen), 120_000);
        assert.doesNotMatch(seen, /not the passphrase/, 'what is typed is not echoed');
        // Typed once the prompt is back (echo is off from the prompt on; what is typed ahead shows).
        await waitFor('the second prompt', () => seen.split('Passphrase: ').length > 2, 60_000);
        console_.stdin.write(`${HOST_KEPT}\n`);
        await waitFor('the installed system to boot', () => /login: /.test(seen), BOOT_TIMEOUT);
      } finally {
        console_.kill();
      }
      assert.match(box.sshRoot('enc1', ['findmnt', '-no', 'SOURCE', '/']), /\/dev\/mapper\/vmstub-root/);
      assert.deepEqual(filesHolding('enc1', HOST_KEPT), [], 'what was typed is in no log either');
      // No passphrase in this boot's fw_cfg: the disk grows now, the container and its root at the next boot.
      const grow = box.run(['disk', 'grow', 'enc1', '+1G', '--json'], { timeoutMs: 240_000 });
      assert.equal(grow.code, 0, grow.stderr);
      const grown = JSON.parse(grow.stdout) as { filesystem: string; detail?: string };
      assert.equal(grown.filesystem, 'next-boot');
      assert.match(grown.detail ?? '', /the host keeps no passphrase to resize its container with now/);
      box.run(['stop', '--force', 'enc1']);
      // And kept again: checked against the disk's header on the host first.
      const keep = box.run(['key', 'keep', 'enc1', '--key-file', join(box.home, 'enc1.key')]);
      assert.equal(keep.code, 0, keep.stderr);
      assert.equal(readFileSync(join(box.instanceDir('enc1'), 'luks-passphrase'), 'utf8'), HOST_KEPT);
    },
  );

  it("clone refuses the source's passphrase for the clone, before anything is made", () => {
    const r = box.run(['clone', 'enc1', 'enc2', '--key-file', join(box.home, 'enc1.key')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^vmstub: the clone's passphrase is enc1's; give it one of its own \(nothing was made\)\n$/,
    );
    assert.ok(!existsSync(box.instanceDir('enc2')), 'no instance was made');
    assert.ok(
      !readdirSync(box.instanceDir('enc1')).some((f) => f.startsWith('layer-')),
      "enc1's disk as it was",
    );
  });
});
