/**
 * The slow tier: `vmstub create --distro gentoo` against a fixture stage3 of Debian 12's binaries,
 * published and signed as Gentoo publishes (gentoo-fixture.ts): the recipe's steps in the stub, the
 * pointer file and DIGESTS verified through the signing subkey of the key given with --keyring, the
 * tarball's SHA512, the unpack, the recipe's (stand-in) portage step that installs the kernel with
 * dracut's initramfs, networkd and resolved, accounts, SSH; the handoff into /boot as Gentoo lays it
 * out; then a stop and a start through the handoff. The mirror first serves a stage3 that differs from
 * its signed DIGESTS: create stops at that step with one line, and resume installs once the mirror
 * serves the right one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GENTOO_DISTROS } from '../../src/catalog/gentoo.js';
import { assertBootsAgain, lastVmstubLine, Sandbox } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';
import { gentooFixture, GENTOO_FIXTURE_WHAT, type GentooFixture } from '../helpers/gentoo-fixture.js';
import { useStub } from '../helpers/stub.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
const MINUTES = 60_000;
const gentoo = GENTOO_DISTROS[0]!;
const name = 'gentoo1';

describe('vmstub create --distro gentoo (fixture stage3 of Debian 12 binaries)', () => {
  const box = new Sandbox();
  const ssh = (...command: string[]) => box.sshRoot(name, command);
  let fixture: GentooFixture;
  let server: Server | undefined;
  let url = '';
  /** The mirror this test serves: the fixture's, its files linked, the stage3 swapped at will. */
  const mirror = join(box.home, 'mirror');
  before(async () => {
    useStub(box);
    fixture = gentooFixture(gentoo);
    execFileSync('cp', ['-al', fixture.mirror, mirror]);
    ({ server, url } = await serveDirectory(mirror, 'gentoo'));
  });
  after(() => {
    server?.close();
    box.cleanup();
  });
  let installed = false;

  it('refuses a stage3 that differs from its signed DIGESTS, in one line, then resumes once it is right', async () => {
    const served = fixture.stage3.replace(fixture.mirror, mirror);
    rmSync(served);
    copyFileSync(fixture.stage3, served);
    appendFileSync(served, 'tampered');
    const r = await box.runAsync(
      [
        'create',
        name,
        '--distro',
        'gentoo',
        '--mirror',
        url,
        '--keyring',
        fixture.key.publicKey,
        '--locale',
        'C.UTF-8',
        '--user',
        'alice',
      ],
      { timeoutMs: 40 * MINUTES },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      lastVmstubLine(r.stderr),
      /^vmstub: install failed at step stage3: .*stage3-amd64-systemd-\S+\.tar\.xz: sha512 is [0-9a-f]+, the repository says [0-9a-f]+; .*to start over: vmstub resume gentoo1$/,
    );
    rmSync(served);
    copyFileSync(fixture.stage3, served);
    const started = Date.now();
    const again = await box.runAsync(['resume', name], { timeoutMs: 40 * MINUTES });
    assert.equal(again.code, 0, `${again.stderr}\n${box.consoleLog(name).split('\n').slice(-40).join('\n')}`);
    process.stdout.write(`# resume gentoo to SSH: ${(Date.now() - started) / 1000} s\n`);
    assert.match(ssh('cat', '/etc/os-release'), /^ID=gentoo$/m);
    // The recipe's portage step ran, with the recipe's atoms (the stand-ins log what they were asked).
    const portage = ssh('cat', '/var/log/vmstub-fixture-portage.log');
    assert.match(portage, /^emerge-webrsync --quiet$/m);
    assert.match(
      portage,
      new RegExp(`^emerge --getbinpkg --noreplace --quiet-build=y ${gentoo.packages.join(' ')}$`, 'm'),
    );
    // /boot as installkernel with dracut lays it out, and that kernel is the one running.
    const v = fixture.kernelVersion;
    assert.equal(ssh('uname', '-r').trim(), v);
    assert.deepEqual(
      ssh('ls', '/boot').split('\n').filter(Boolean).sort(),
      [`System.map-${v}`, `config-${v}`, `initramfs-${v}.img`, `vmlinuz-${v}`].sort(),
    );
    assert.match(box.consoleLog(name), /vmstub-handoff: found \S+/);
    assert.equal(ssh('hostname').trim(), name);
    assert.equal(
      ssh('systemctl', 'is-active', 'systemd-networkd', 'systemd-resolved', 'sshd').trim(),
      'active\nactive\nactive',
    );
    assert.equal(ssh('sudo', '-n', '-u', 'alice', 'sudo', '-n', 'id', '-u').trim(), '0');
    assert.match(ssh('id', '-Gn', 'alice'), /\bwheel\b/);
    // Host keys of its own: the stage3 carries none.
    assert.match(ssh('ls', '/etc/ssh'), /ssh_host_ed25519_key/);
    installed = true;
  });

  it('boots again through the handoff after stop and start', { timeout: 15 * MINUTES }, () => {
    assert.ok(installed, 'the install to SSH passed');
    assertBootsAgain(box, name);
    recordEvidence(import.meta.url, [
      { distro: 'gentoo', source: 'fixture-binaries', reached: 'ssh', what: GENTOO_FIXTURE_WHAT },
    ]);
  });
});
