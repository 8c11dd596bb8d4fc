/**
 * Interruptions, as `timeout`, Ctrl-C and kill -9 deliver them: the stage cache, and a real stub build.
 * After each: nothing mounted and nothing running under vmstub's directories, and the same command run
 * again succeeds. Interrupted installs into a directory, and a stub build killed outright and built again
 * whole, are in the slow tier (test/slow/faults-interrupt-install.test.ts, faults-interrupt-stub.test.ts).
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
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StageCache } from '../../src/image/stage-cache.js';
import { assertNothingLeft, mountsUnder } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { stubBuildSandbox } from '../helpers/stub.js';

const BOOTSTRAP_RUNNING = /installing remaining packages/;

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
    const { box, cache, out, build, cleanup } = stubBuildSandbox();
    after(cleanup);

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
  },
);
