/**
 * The aarch64 and riscv64 stubs on this x86_64 host, for real: built as a user builds them (through
 * qemu-user-static and binfmt_misc, which scripts/setup-host registers), booted under TCG to their
 * autologin shell, stopped through the guest agent (neither machine has a power button the guest
 * sees), and handing over to a fixture installed system of their own architecture: by kexec on
 * aarch64; on riscv64, whose stub has no kexec, by the host, which boots the kernel the stub sent.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeEvents, type StubEvent } from '../../src/events/protocol.js';
import type { Arch } from '../../src/util/arch.js';
import { Sandbox, waitFor } from '../helpers/cli.js';
import { INSTALLED_MARKER, filesystemImage, installedTree, partsFromStub } from '../helpers/installed.js';
import { buildStub, type StubBuild } from '../helpers/stub.js';

const BOOT = 10 * 60_000;
const work = mkdtempSync(join(tmpdir(), 'vmstub-foreign-'));
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const MACHINES: Record<
  'aarch64' | 'riscv64',
  { qemu: string; cpu: string; console: string; handoff: string }
> = {
  aarch64: {
    qemu: 'qemu-system-aarch64',
    cpu: 'max,pauth-impdef=on,lpa2=off',
    console: 'ttyAMA0,115200n8',
    handoff: 'kexec',
  },
  riscv64: { qemu: 'qemu-system-riscv64', cpu: 'rv64', console: 'ttyS0,115200n8', handoff: 'host-boot' },
};

for (const arch of Object.keys(MACHINES) as (keyof typeof MACHINES)[]) {
  const m = MACHINES[arch];
  describe(`the ${arch} stub`, () => {
    let box: Sandbox;
    let stub: StubBuild;
    before(() => {
      box = new Sandbox();
      stub = buildStub(box, arch as Arch);
    });
    after(() => box.cleanup());

    const events = (name: string) => {
      const f = join(box.instanceDir(name), 'events.ndjson');
      return existsSync(f) ? decodeEvents<StubEvent>(readFileSync(f, 'utf8')).events : [];
    };
    const state = (name: string) =>
      JSON.parse(box.run(['show', '--json', name]).stdout) as {
        state: string;
        lastExit?: { reason: string };
      };
    const qemuCommand = (name: string) =>
      (
        JSON.parse(readFileSync(join(box.instanceDir(name), 'state.json'), 'utf8')) as {
          qemuCommand?: string[];
        }
      ).qemuCommand ?? [];

    test(
      `boots under TCG on its own machine to the autologin shell on ${m.console.split(',')[0]}`,
      { timeout: BOOT },
      async () => {
        assert.ok(
          stub.bytes > 60 * 1024 * 1024 && stub.bytes < 250 * 1024 * 1024,
          `stub is ${stub.bytes} bytes`,
        );
        const r = box.run(['run', '--detach', '--name', 'shell', '--memory', '1G', stub.image]);
        assert.equal(r.code, 0, r.stderr);
        const cmd = qemuCommand('shell');
        assert.match(cmd[0] ?? '', new RegExp(`/${m.qemu}$`));
        assert.equal(cmd[cmd.indexOf('-cpu') + 1], m.cpu);
        assert.match(cmd[cmd.indexOf('-append') + 1] ?? '', new RegExp(`^console=${m.console}`));
        await box.waitForConsole('shell', 'the autologin', '(automatic login)', BOOT);
        assert.doesNotMatch(box.consoleLog('shell'), /No such file or directory/);
        const stop = box.run(['stop', 'shell'], { timeoutMs: 120_000 });
        assert.equal(stop.code, 0, stop.stderr);
        assert.match(stop.stdout + stop.stderr, /powered off/);
        assert.equal(state('shell').lastExit?.reason, 'guest-shutdown');
      },
    );

    test(
      `hands over to an installed ${arch} system (${m.handoff}), writing nothing to it`,
      { timeout: 2 * BOOT },
      async () => {
        const parts = partsFromStub(stub.image);
        const disk = join(work, `${arch}.img`);
        const uuid = filesystemImage('xfs', installedTree('xfs', parts), disk);
        const before = sha256(disk);
        const r = box.run(['run', '--detach', '--name', 'kx', '--memory', '1G', '--data', disk, stub.image]);
        assert.equal(r.code, 0, r.stderr);
        await box.waitForConsole('kx', 'the installed system', INSTALLED_MARKER, BOOT);
        const cmdline = await waitFor(
          'its command line',
          () => /INSTALLED-CMDLINE: (.*)\r?\n/.exec(box.consoleLog('kx'))?.[1],
          60_000,
        );
        assert.equal(cmdline.trim(), `root=UUID=${uuid} rootfstype=xfs ro console=${m.console}`);
        await waitFor('the fixture to power off', () => state('kx').state === 'stopped', 120_000);
        const handoff = events('kx').filter((e) => e.type === 'handoff');
        assert.equal(handoff.at(-1)?.status, m.handoff);
        assert.equal(sha256(disk), before, 'the handoff wrote nothing to the installed system');
        if (arch !== 'riscv64') return;

        // The host kept the kernel it booted; the next start's stub finds the same one and sends only that word.
        const hostBoot = handoff.at(-1);
        assert.ok(hostBoot?.status === 'host-boot' && !hostBoot.unchanged);
        assert.equal(box.run(['start', 'kx']).code, 0);
        await waitFor(
          'the second direct boot',
          () => (box.consoleLog('kx').split(INSTALLED_MARKER).length > 2 ? true : undefined),
          BOOT,
        );
        const again = events('kx')
          .filter((e) => e.type === 'handoff')
          .at(-1);
        assert.ok(again?.status === 'host-boot' && again.unchanged, JSON.stringify(again));
        await waitFor('the fixture to power off', () => state('kx').state === 'stopped', 120_000);
        assert.equal(sha256(disk), before);
      },
    );
  });
}
