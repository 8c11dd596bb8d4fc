/**
 * Interruptions, as `timeout`, Ctrl-C and kill -9 deliver them: vmstub install into a directory (the real
 * installer, mmdebstrap and apt against the Ubuntu fixture mirror, through a misbehaving proxy), the stage
 * cache, and a real stub build. After each: nothing mounted and nothing running under vmstub's
 * directories, and the same command run again succeeds.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findInstalledKernel, UNFINISHED_INSTALL_MARK } from '../../src/boot/discover.js';
import { StageCache } from '../../src/image/stage-cache.js';
import { mountsUnder, processesUsing, Sandbox, waitFor, type CliResult } from '../helpers/cli.js';
import type { FixtureMirror } from '../helpers/deb-mirror.js';
import { faultyMirror, type FaultRule, type Served } from '../helpers/fault-proxy.js';
import { isRoot } from '../helpers/fixture.js';
import { ubuntuFixtureMirror, ubuntuInstallArgs } from '../helpers/ubuntu-fixture.js';

const BOOTSTRAP_RUNNING = /installing remaining packages/;
/** A post-install command that takes its time: a point where the new system is being configured in a chroot. */
const CONFIGURING = /\] Run the post-install commands/;
const SLOW_POST_INSTALL = ['--post-install', 'sleep 120'];

/** Nothing of the interrupted command may be left: no mount, no process, under dir. */
async function assertNothingLeft(dir: string, what: string): Promise<void> {
  await waitFor(
    `${what}: processes under ${dir} to end`,
    () => processesUsing(dir).length === 0,
    15_000,
  ).catch(() => {
    assert.fail(`${what}: still running under ${dir}: ${processesUsing(dir).join('; ')}`);
  });
  assert.deepEqual(mountsUnder(dir), [], `${what}: mounts left under ${dir}`);
}

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

describe(
  'the stage cache under concurrency and after kills',
  { skip: !isRoot && 'needs root (mounts)' },
  () => {
    const here = dirname(fileURLToPath(import.meta.url));

    it('a stale half-built stage with mounts inside is unmounted and removed, never walked into', async () => {
      const root = mkdtempSync(join(tmpdir(), 'stages-'));
      const stale = join(root, '.rootfs-k1.999999');
      mkdirSync(join(stale, 'root', 'proc'), { recursive: true });
      writeFileSync(join(stale, '.owner'), JSON.stringify({ pid: 999999, start: '1' }));
      execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', join(stale, 'root', 'proc')]);
      writeFileSync(join(stale, 'root', 'proc', 'precious'), 'a mounted file system must not be emptied\n');
      const notes: string[] = [];
      const r = await new StageCache(root, (l) => notes.push(l)).build('rootfs', 'k2', async (dir) => {
        writeFileSync(join(dir, 'made'), 'x');
      });
      assert.equal(r.hit, false);
      assert.deepEqual(mountsUnder(root), []);
      assert.ok(!existsSync(stale));
      assert.deepEqual(notes, ['removed .rootfs-k1.999999, left by an interrupted build']);
      rmSync(root, { recursive: true, force: true });
    });

    it('two processes building one stage at once: it is built once, both get it', async () => {
      const root = mkdtempSync(join(tmpdir(), 'stages-'));
      const module = resolve(here, '..', '..', 'src', 'image', 'stage-cache.js');
      const script = `
      const { StageCache } = await import(${JSON.stringify(module)});
      const { appendFileSync } = await import('node:fs');
      const r = await new StageCache(${JSON.stringify(root)}).build('rootfs', 'same', async (dir) => {
        appendFileSync(${JSON.stringify(join(root, 'fills'))}, process.pid + '\\n');
        await new Promise((r) => setTimeout(r, 1500));
      });
      console.log(JSON.stringify(r));`;
      const one = () =>
        new Promise<string>((res, rej) => {
          const c = spawn(process.execPath, ['--input-type=module', '-e', script], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          c.stdout.on('data', (d: Buffer) => (out += d.toString()));
          c.on('close', (code) => (code === 0 ? res(out.trim()) : rej(new Error(`exit ${code}`))));
        });
      const results = (await Promise.all([one(), one()])).map(
        (o) => JSON.parse(o) as { dir: string; hit: boolean },
      );
      assert.equal(readFileSync(join(root, 'fills'), 'utf8').trim().split('\n').length, 1, 'filled once');
      assert.equal(results[0]!.dir, results[1]!.dir);
      assert.deepEqual(results.map((r) => r.hit).sort(), [false, true]);
      assert.deepEqual(readdirSync(root).sort(), ['fills', 'rootfs-same']);
      rmSync(root, { recursive: true, force: true });
    });
  },
);

describe(
  'an interrupted stub build (Debian mirror)',
  { skip: !isRoot && 'needs root (mmdebstrap --mode=root)' },
  () => {
    const box = new Sandbox();
    const cache = join(box.home, 'cache');
    const out = join(box.home, 'images');
    box.env.VMSTUB_CACHE = cache;
    const build = ['image', 'build', 'stub', '--out', out];

    after(() => {
      for (const m of mountsUnder(cache)) execFileSync('umount', ['-l', m]);
      rmSync(box.home, { recursive: true, force: true });
    });

    it(
      'SIGTERM: mmdebstrap ended, its mounts undone, the half-built stage removed',
      { timeout: 600_000 },
      async () => {
        const r = await box.runAndKill(build, BOOTSTRAP_RUNNING, 'SIGTERM', { delayMs: 1000 });
        assert.equal(r.code, 143, r.stderr);
        await assertNothingLeft(cache, 'stub build, SIGTERM');
        assert.deepEqual(
          readdirSync(join(cache, 'images')).filter((f) => f.startsWith('.')),
          [],
          'no half-built stage, no lock',
        );
        assert.ok(!existsSync(join(out, 'stub-x86_64.squashfs')));
      },
    );

    it(
      'SIGTERM after its output pipes were closed: the undoing still runs to the end',
      { timeout: 600_000 },
      async () => {
        // The progress it writes in the meantime, and the undoing's own lines, meet a closed pipe (EPIPE).
        const r = await box.runAndKill(build, BOOTSTRAP_RUNNING, 'SIGTERM', {
          delayMs: 3000,
          readerGone: true,
        });
        assert.equal(r.code, 143, 'exits as interrupted, not by an unhandled write error');
        await assertNothingLeft(cache, 'stub build, SIGTERM, reader gone');
        assert.deepEqual(
          readdirSync(join(cache, 'images')).filter((f) => f.startsWith('.')),
          [],
          'no half-built stage, no lock',
        );
      },
    );

    it(
      'SIGKILL: the watchdog ends mmdebstrap; the next build clears the stage and succeeds',
      { timeout: 1_200_000 },
      async () => {
        const r = await box.runAndKill(build, BOOTSTRAP_RUNNING, 'SIGKILL', { delayMs: 1000 });
        assert.equal(r.code, 137, r.stderr);
        await waitFor(
          'mmdebstrap to be ended by the watchdog',
          () => processesUsing(cache).length === 0,
          15_000,
        );
        assert.ok(
          mountsUnder(cache).length > 0,
          'a SIGKILL leaves the bootstrap mounted (what the next run must clear)',
        );
        const again = await box.runAsync([...build, '--json'], { timeoutMs: 1_200_000 });
        assert.equal(again.code, 0, again.stderr);
        assert.match(
          again.stderr,
          /removed \.image-bootstrap-debian13-x86_64-\w+\.\d+, left by an interrupted build/,
        );
        assert.deepEqual(mountsUnder(cache), []);
        assert.ok(existsSync(join(out, 'stub-x86_64.squashfs')));
      },
    );
  },
);
