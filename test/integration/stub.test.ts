/**
 * The stub image, built for real (mmdebstrap from Debian's mirror; cached between runs on a machine)
 * and booted under QEMU.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CATALOG } from '../../src/catalog/index.js';
import { guestExec, qgaExecute } from '../../src/vm/qga.js';
import { Sandbox, waitFor } from '../helpers/cli.js';
import { buildStub, type StubBuild } from '../helpers/stub.js';

let box: Sandbox;
let stub: StubBuild;

before(() => {
  box = new Sandbox();
});
after(() => box.cleanup());

test(
  'vmstub image build stub: one checked squashfs, its sha256, cached stages',
  { timeout: 40 * 60 * 1000 },
  () => {
    stub = buildStub(box);
    assert.match(stub.image, /stub-x86_64\.squashfs$/);
    assert.equal(stub.sha256, createHash('sha256').update(readFileSync(stub.image)).digest('hex'));
    assert.ok(stub.bytes > 64 * 1024 * 1024, `${stub.bytes} bytes`);
    assert.deepEqual(
      stub.stages.map((s) => s.name),
      ['bootstrap', 'packages', 'root', 'image'],
    );
    const again = buildStub(box);
    assert.deepEqual(
      again.stages.map((s) => s.hit),
      [true, true, true, true],
      'a rebuild with nothing changed is all cache hits',
    );
    assert.equal(again.sha256, stub.sha256);
    const explain = box.run(['image', 'build', 'stub', '--explain']);
    assert.equal(explain.code, 0, explain.stderr);
    assert.deepEqual(
      explain.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/ \(\w+\)$/, '')),
      ['bootstrap: hit', 'packages: hit', 'root: hit', 'image: hit'],
      '--explain sees the stub as built',
    );
  },
);

test(
  'the stub boots to a root shell on its console, with the guest agent up and an install script per catalog entry',
  { timeout: 300_000 },
  async () => {
    const r = box.run(['run', '--detach', '--name', 'stub', stub.image]);
    assert.equal(r.code, 0, r.stderr);
    await box.waitForConsole('stub', 'the autologin', '(automatic login)', 240_000);
    const dir = box.instanceDir('stub');

    const sock = connect(join(dir, 'console.sock'));
    let seen = '';
    sock.on('data', (d: Buffer) => (seen += d.toString()));
    await new Promise((r2) => sock.once('connect', r2));
    await waitFor(
      'a shell prompt',
      () => {
        sock.write('\n');
        return /root@stub:~# /.test(seen);
      },
      60_000,
    );
    sock.write('echo MARK-$((40+2))\n');
    await waitFor("the command's answer", () => seen.includes('MARK-42'), 30_000);
    sock.destroy();

    assert.deepEqual(await qgaExecute(join(dir, 'qga.sock'), 'guest-ping', undefined, 30_000), {});
    const ls = await guestExec(join(dir, 'qga.sock'), '/bin/sh', ['-c', 'cd /root && ls *.sh']);
    assert.equal(ls.exitcode, 0, ls.stderr);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), CATALOG.map((d) => `${d.id}.sh`).sort());
    const os = await guestExec(join(dir, 'qga.sock'), '/bin/sh', [
      '-c',
      '. /etc/os-release; echo $VERSION_CODENAME; findmnt -no FSTYPE /; ls /usr/share/man | wc -l; ls /usr/share/doc/bash; cat /proc/cmdline',
    ]);
    const [codename, rootFs, manuals, bashDocs, cmdline] = os.stdout.trim().split('\n');
    assert.deepEqual([codename, rootFs], ['trixie', 'overlay']);
    assert.deepEqual([manuals, bashDocs], ['0', 'copyright'], 'stub.yaml says docs: false');
    assert.match(
      cmdline ?? '',
      / quiet lsm=landlock,lockdown,yama,integrity panic=10/,
      "stub.yaml's cmdline",
    );
    assert.doesNotMatch(
      box.consoleLog('stub'),
      /vmstub-init:/,
      'the initramfs had nothing to complain about',
    );
  },
);

test(
  'a stub whose kernel dies boots again by itself (panic=10), to its shell',
  { timeout: 300_000 },
  async () => {
    const qga = join(box.instanceDir('stub'), 'qga.sock');
    const logins = () => box.consoleLog('stub').split('(automatic login)').length - 1;
    const before = logins();
    // guest-exec answers with the pid at once; the kernel dies right after.
    await qgaExecute(
      qga,
      'guest-exec',
      { path: '/bin/sh', arg: ['-c', 'sleep 1; echo c > /proc/sysrq-trigger'] },
      30_000,
    );
    await box.waitForConsole(
      'stub',
      'the panic',
      'Kernel panic - not syncing: sysrq triggered crash',
      60_000,
    );
    await waitFor('the stub to boot again to its autologin', () => logins() > before, 240_000);
    assert.match(box.consoleLog('stub'), /Rebooting in 10 seconds/);
    assert.deepEqual(
      await qgaExecute(qga, 'guest-ping', undefined, 60_000),
      {},
      'its guest agent is up again',
    );
  },
);

test('vmstub stop powers the stub off through ACPI within its timeout', { timeout: 120_000 }, () => {
  const r = box.run(['stop', '--timeout', '60', 'stub']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'stub powered off\n');
});
