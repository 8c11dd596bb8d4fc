/**
 * The slow tier: an encrypted root the host keeps no passphrase of (--unlock console), interrupted
 * while the install runs and resumed. The install's passphrase is gone with the interrupted attempt, so
 * the resume, which formats the disk again, needs a new one: refused without it (nothing changed),
 * then given with --key-file; the new passphrase opens the root and the first one does not.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { processesUsing, Sandbox } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');

const CREATE_TIMEOUT = 40 * 60_000;

describe('an encrypted root with --unlock console, interrupted and resumed', () => {
  const box = new Sandbox();
  const keyFile = (name: string, passphrase: string) => {
    const file = join(box.home, name);
    writeFileSync(file, `${passphrase}\n`, { mode: 0o600 });
    return file;
  };
  const passphraseFile = () => join(box.instanceDir('encr'), 'luks-passphrase');
  const status = () =>
    (JSON.parse(box.run(['list', '--json']).stdout) as { install: { phase: string; step: string } }[])[0]!
      .install;

  before(() => useStub(box));
  after(() => box.cleanup());

  it(
    'interrupted (SIGTERM) in the unpack: the VM stops, and the host keeps no passphrase',
    { timeout: CREATE_TIMEOUT },
    async () => {
      const r = await box.runAndKill(
        [
          ...['create', 'encr', '--distro', 'debian12', '--encrypt', '--unlock', 'console'],
          ...['--key-file', keyFile('first.key', 'the first passphrase'), '--json'],
        ],
        /"type":"step-start","step":"unpack"/,
        'SIGTERM',
        { delayMs: 3000, timeoutMs: CREATE_TIMEOUT },
      );
      assert.ok(r.killedAt, `the unpack never started: ${r.stderr}`);
      assert.equal(r.code, 143, r.stderr);
      assert.deepEqual([status().phase, status().step], ['interrupted', 'unpack']);
      assert.deepEqual(processesUsing(box.instanceDir('encr')), [], 'no QEMU left');
      assert.ok(!existsSync(passphraseFile()), 'the install passphrase went with the attempt');
    },
  );

  it('resume without a passphrase, and no terminal to type one at: one line, nothing changed', () => {
    const r = box.run(['resume', 'encr']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^vmstub: encr's root is formatted again: give the passphrase with --key-file FILE \(there is no terminal to ask at\)\n$/,
    );
    assert.deepEqual([status().phase, status().step], ['interrupted', 'unpack']);
  });

  it(
    'resume --key-file: to SSH; the new passphrase opens the root, the first no longer does',
    { timeout: CREATE_TIMEOUT },
    async () => {
      const second = keyFile('second.key', 'the passphrase of the second attempt');
      const r = await box.runAsync(['resume', 'encr', '--key-file', second], { timeoutMs: CREATE_TIMEOUT });
      assert.equal(r.code, 0, `${r.stderr}\n${box.consoleLog('encr').split('\n').slice(-40).join('\n')}`);
      assert.match(box.sshRoot('encr', ['findmnt', '-no', 'SOURCE', '/']), /\/dev\/mapper\/vmstub-root/);
      assert.ok(!existsSync(passphraseFile()), 'unlock: console keeps nothing after the install');
      assert.equal(box.run(['stop', 'encr']).code, 0);
      // key keep checks a passphrase against the disk's LUKS header on the host.
      const first = box.run(['key', 'keep', 'encr', '--key-file', join(box.home, 'first.key')]);
      assert.equal(first.code, 2, first.stderr);
      assert.match(first.stderr, /that passphrase does not open encr's root/);
      const keep = box.run(['key', 'keep', 'encr', '--key-file', second]);
      assert.equal(keep.code, 0, keep.stderr);
    },
  );
});
