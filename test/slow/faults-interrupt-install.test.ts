/**
 * The slow tier: interruptions of vmstub install into a directory, as `timeout`, Ctrl-C and kill -9
 * deliver them (the real installer, mmdebstrap and apt against the Ubuntu fixture mirror, through a
 * misbehaving proxy). After each: nothing mounted and nothing running under the target, and the same
 * command run again succeeds. Moved from the integration tier to make room in CI's hour for the creates
 * of every family; the creates' own interruption and resume stay in CI (test/e2e/create.test.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findInstalledKernel, UNFINISHED_INSTALL_MARK } from '../../src/boot/discover.js';
import {
  assertNothingLeft,
  mountsUnder,
  processesUsing,
  Sandbox,
  waitFor,
  type CliResult,
} from '../helpers/cli.js';
import type { FixtureMirror } from '../helpers/deb-mirror.js';
import { faultyMirror, type FaultRule, type Served } from '../helpers/fault-proxy.js';
import { isRoot } from '../helpers/fixture.js';
import { ubuntuFixtureMirror, ubuntuInstallArgs } from '../helpers/ubuntu-fixture.js';

const BOOTSTRAP_RUNNING = /installing remaining packages/;
/** A post-install command that takes its time: a point where the new system is being configured in a chroot. */
const CONFIGURING = /\] Run the post-install commands/;
const SLOW_POST_INSTALL = ['--post-install', 'sleep 120'];

const exitOf = (signal: 'SIGTERM' | 'SIGKILL') => (signal === 'SIGTERM' ? 143 : 137);

describe(
  'interrupted installs into a directory (Ubuntu fixture mirror)',
  { skip: !isRoot && 'needs root (chroot, mounts)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-interrupt-'));
    const box = new Sandbox();
    let mirror: FixtureMirror;
    let upstream = '';
    let server: Server | undefined;

    before(async () => {
      ({ mirror, url: upstream, server } = await ubuntuFixtureMirror(work));
    });

    after(() => {
      server?.close();
      for (const m of mountsUnder(work)) execFileSync('umount', ['-l', m]);
      rmSync(work, { recursive: true, force: true });
      rmSync(box.home, { recursive: true, force: true });
    });

    const installArgs = (target: string, url: string) => ubuntuInstallArgs(target, url, mirror.keyring);

    /** What the proxy served, for the last installThrough. */
    let served: Served[] = [];

    async function installThrough(target: string, rules: FaultRule[]): Promise<CliResult> {
      const proxy = await faultyMirror(upstream, rules);
      served = proxy.log;
      try {
        return await box.runAsync(installArgs(target, proxy.url), { timeoutMs: 900_000 });
      } finally {
        await proxy.close();
      }
    }

    /** The install ran to the end: the kernel where the handoff looks, no unfinished mark, nothing mounted. */
    function assertInstalled(target: string, r: CliResult): void {
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.ok(findInstalledKernel(target), 'a kernel where the handoff looks');
      assert.ok(!existsSync(join(target, UNFINISHED_INSTALL_MARK)));
      assert.deepEqual(mountsUnder(target), []);
    }

    const cases: {
      name: string;
      signal: 'SIGTERM' | 'SIGKILL';
      at: RegExp;
      delayMs: number;
      extra?: string[];
      rerun: FaultRule[];
    }[] = [
      {
        name: 'SIGTERM while the bootstrap runs; the re-run meets dropped connections',
        signal: 'SIGTERM',
        at: BOOTSTRAP_RUNNING,
        delayMs: 1500,
        rerun: [{ match: /\.deb$/, fault: { kind: 'drop', afterBytes: 4096 }, times: 3 }],
      },
      {
        name: 'SIGKILL while the bootstrap runs; the re-run meets truncated downloads',
        signal: 'SIGKILL',
        at: BOOTSTRAP_RUNNING,
        delayMs: 1500,
        rerun: [{ match: /\.deb$/, fault: { kind: 'truncate', bytes: 2000 }, times: 2 }],
      },
      {
        name: 'SIGTERM while the system is configured',
        signal: 'SIGTERM',
        at: CONFIGURING,
        delayMs: 1000,
        extra: SLOW_POST_INSTALL,
        rerun: [],
      },
      {
        name: 'SIGKILL while the system is configured',
        signal: 'SIGKILL',
        at: CONFIGURING,
        delayMs: 1000,
        extra: SLOW_POST_INSTALL,
        rerun: [],
      },
    ];

    for (const c of cases) {
      it(c.name, async () => {
        const target = join(work, c.name.replace(/\W+/g, '-'));
        mkdirSync(target);
        const r = await box.runAndKill(
          [...installArgs(target, upstream), ...(c.extra ?? [])],
          c.at,
          c.signal,
          { delayMs: c.delayMs },
        );
        assert.ok(r.killedAt, `never reached ${c.at}: ${r.stdout}${r.stderr}`);
        assert.equal(r.code, exitOf(c.signal), r.stdout + r.stderr);
        if (c.signal === 'SIGTERM') {
          assert.match(r.stderr, /vmstub: interrupted by SIGTERM; undoing: /);
          await assertNothingLeft(target, c.name);
        } else {
          // Killed outright, vmstub cannot undo anything itself: its watchdog ends what it ran...
          await waitFor(
            "the killed install's processes to end",
            () => processesUsing(target).length === 0,
            15_000,
          );
        }
        // ... and the next run clears what is left (mounts included) and installs.
        const again = await installThrough(target, c.rerun);
        assertInstalled(target, again);
        assert.match(
          readFileSync('/var/log/vmstub-install.log', 'utf8'),
          /cleared the unfinished install an earlier vmstub \(pid \d+\) left in/,
        );
        await assertNothingLeft(target, `${c.name}, re-run`);
        // apt keeps what it got of a body cut short and asks for the rest (an HTTP range), as vmstub's
        // own downloads do. (After a reset it may start from zero: what it had was not yet written.)
        for (const cut of served.filter((l) => l.fault === 'truncate')) {
          const rest = served.find((l) => l.path === cut.path && l.status === 206);
          assert.ok(rest, `${cut.path} was fetched again from zero, not resumed`);
          assert.equal(rest.range, `bytes=${cut.bytes}-`);
        }
      });
    }

    it('a corrupt package is refused by apt, one failure line, nothing mounted; a clean re-run installs', async () => {
      const target = join(work, 'corrupt');
      mkdirSync(target);
      const r = await installThrough(target, [
        { match: /\/openssh-server_[^/]*\.deb$/, fault: { kind: 'corrupt' }, times: Infinity },
      ]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const failures = r.stdout.split('\n').filter((l) => l.includes('install FAILED'));
      assert.equal(failures.length, 1, r.stdout);
      assert.match(failures[0]!, /at step bootstrap/);
      assert.match(readFileSync('/var/log/vmstub-install.log', 'utf8'), /Hash Sum mismatch|hashes|checksum/i);
      await assertNothingLeft(target, 'corrupt package');
      assert.ok(
        !findInstalledKernel(target) || existsSync(join(target, UNFINISHED_INSTALL_MARK)),
        'never looks finished',
      );
      assertInstalled(target, await installThrough(target, []));
    });

    it('refuses a directory with files of the user, and never deletes them', async () => {
      const target = join(work, 'users-files');
      mkdirSync(target);
      writeFileSync(join(target, 'notes.txt'), 'mine\n');
      const r = await installThrough(target, []);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /the target is not empty \(notes\.txt/);
      assert.equal(readFileSync(join(target, 'notes.txt'), 'utf8'), 'mine\n');
    });
  },
);
