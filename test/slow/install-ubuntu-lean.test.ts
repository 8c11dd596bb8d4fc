/**
 * The slow tier: `vmstub install ubuntu2404 --target-dir` from a fixture mirror without eatmydata (as
 * some mirrors and releases are): the install goes on without it, and dpkg is left as it was. Moved
 * from test/integration/install-ubuntu.test.ts to make room in CI's hour.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { mountsUnder, Sandbox } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { assertPlainDpkg, ubuntuFixtureMirror, ubuntuInstallArgs } from '../helpers/ubuntu-fixture.js';

describe(
  'vmstub install ubuntu2404 --target-dir from a mirror without eatmydata (fixture mirror)',
  { skip: !isRoot && 'needs root (chroot, mounts)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-ubuntu-lean-'));
    const sandbox = new Sandbox();
    let url = '';
    let keyring = '';
    let server: Server | undefined;

    before(async () => {
      const lean = await ubuntuFixtureMirror(work, { lean: true });
      ({ url, server } = lean);
      keyring = lean.mirror.keyring;
    });
    after(() => {
      server?.close();
      for (const m of mountsUnder(work)) execFileSync('umount', ['-l', m]);
      rmSync(work, { recursive: true, force: true });
      rmSync(sandbox.home, { recursive: true, force: true });
    });

    it('installs from a mirror without eatmydata too, with dpkg as it was', async () => {
      const target = join(work, 'lean-target');
      mkdirSync(target);
      const r = await sandbox.runAsync(ubuntuInstallArgs(target, url, keyring), { timeoutMs: 900_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(readFileSync('/var/log/vmstub-install.log', 'utf8'), /eatmydata is not on this mirror/);
      assertPlainDpkg(target);
    });
  },
);
