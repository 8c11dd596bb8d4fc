/**
 * The slow tier (npm run test:slow; not in CI's hour): `vmstub create` of Debian 12 from Debian's real
 * mirror under TCG, hit by the faults that only a whole install can meet, each followed by `vmstub
 * resume` to a verified SSH login. About ten minutes per case here.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lastVmstubLine, processesUsing, Sandbox, waitFor } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';

const MINUTES = 60_000;

describe(
  'vmstub create under faults, then vmstub resume (real mirror)',
  { skip: !isRoot && 'needs root' },
  () => {
    const box = new Sandbox();
    box.env.HOME = join(box.home, 'home');
    delete box.env.SSH_AUTH_SOCK;

    before(() => useStub(box));

    after(() => {
      box.cleanup();
      rmSync(box.home, { recursive: true, force: true });
    });

    /** The instance as show --json has it; before create has made it, nothing. */
    const status = (name: string) => {
      const r = box.run(['show', '--json', name]);
      return r.code === 0
        ? (JSON.parse(r.stdout) as { state: string; install?: { phase: string; step?: string } })
        : { state: 'absent', install: undefined };
    };
    const loggedIn = (name: string) => {
      const r = box.run(['ssh', name, '--', 'cat', '/etc/os-release'], { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /VERSION_ID="12"/);
    };

    it(
      'create killed outright (SIGKILL): the VM installs on; resume follows it to SSH',
      { timeout: 45 * MINUTES },
      async () => {
        const r = await box.runAndKill(
          ['create', 'k9', '--distro', 'debian12', '--bootstrap-on', 'guest'],
          /\] Bootstrap/,
          'SIGKILL',
          {
            delayMs: 10_000,
            timeoutMs: 20 * MINUTES,
          },
        );
        assert.equal(r.code, 137, r.stderr);
        assert.deepEqual([status('k9').state, status('k9').install?.phase], ['running', 'installing']);
        const again = await box.runAsync(['resume', 'k9'], { timeoutMs: 40 * MINUTES });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /k9 is still installing \(installing \(bootstrap\)\); following it/);
        loggedIn('k9');
        assert.equal(status('k9').install?.phase, 'installed');
        box.run(['stop', '--force', 'k9']);
      },
    );

    it(
      'QEMU killed mid-install: create says so; resume starts over and logs in',
      { timeout: 45 * MINUTES },
      async () => {
        const name = 'qk';
        const creating = box.runAsync(['create', name, '--distro', 'debian12', '--bootstrap-on', 'guest'], {
          timeoutMs: 30 * MINUTES,
        });
        await waitFor(
          'the bootstrap',
          () => /bootstrap/.test(status(name).install?.step ?? ''),
          10 * MINUTES,
        );
        await new Promise((r) => setTimeout(r, 20_000));
        const qemuPid = JSON.parse(readFileSync(join(box.instanceDir(name), 'state.json'), 'utf8'))
          .qemuPid as number;
        process.kill(qemuPid, 'SIGKILL');
        const r = await creating;
        assert.equal(r.code, 1);
        assert.match(r.stderr, /the VM stopped during the install; .*to start over: vmstub resume qk/);
        assert.deepEqual([status(name).state, status(name).install?.phase], ['stopped', 'interrupted']);
        assert.deepEqual(processesUsing(box.instanceDir(name)), []);
        const again = await box.runAsync(['resume', name], { timeoutMs: 40 * MINUTES });
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stderr, /starting the install over on the same disk \(attempt 2\)/);
        loggedIn(name);
        box.run(['stop', '--force', name]);
      },
    );

    it(
      'a data disk too small: the install fails naming the step; grown, resume installs',
      { timeout: 60 * MINUTES },
      async () => {
        const name = 'small';
        const r = await box.runAsync(
          ['create', name, '--distro', 'debian12', '--bootstrap-on', 'guest', '--disk', '400M'],
          {
            timeoutMs: 30 * MINUTES,
          },
        );
        assert.equal(r.code, 1, r.stderr);
        assert.match(
          lastVmstubLine(r.stderr),
          /install failed at step bootstrap: .*; log: .*install\.log; to start over: vmstub resume small/,
        );
        assert.match(
          readFileSync(join(box.instanceDir(name), 'install.log'), 'utf8'),
          /No space left on device/i,
        );
        assert.equal(status(name).install?.phase, 'failed');
        assert.equal(box.run(['stop', '--force', name]).code, 0);
        assert.equal(box.run(['allocate', join(box.instanceDir(name), 'disk.img'), '8G']).code, 0);
        const again = await box.runAsync(['resume', name], { timeoutMs: 40 * MINUTES });
        assert.equal(again.code, 0, again.stderr);
        loggedIn(name);
        box.run(['stop', '--force', name]);
      },
    );

    it(
      'creates at once: two names both install; the same name twice, exactly one wins',
      { timeout: 60 * MINUTES },
      async () => {
        const [a, aAgain, b] = await Promise.all([
          box.runAsync(['create', 'c1', '--distro', 'debian12', '--bootstrap-on', 'guest'], {
            timeoutMs: 50 * MINUTES,
          }),
          box.runAsync(['create', 'c1', '--distro', 'debian12', '--bootstrap-on', 'guest'], {
            timeoutMs: 50 * MINUTES,
          }),
          box.runAsync(['create', 'c2', '--distro', 'debian12', '--bootstrap-on', 'guest'], {
            timeoutMs: 50 * MINUTES,
          }),
        ]);
        const c1 = [a, aAgain].sort((x, y) => (x.code ?? 9) - (y.code ?? 9));
        assert.equal(c1[0]!.code, 0, c1[0]!.stderr);
        assert.equal(c1[1]!.code, 3, c1[1]!.stderr);
        assert.match(c1[1]!.stderr, /^vmstub: (an instance named c1 already exists|c1 exists: installing)/m);
        assert.equal(b.code, 0, b.stderr);
        loggedIn('c1');
        loggedIn('c2');
        for (const n of ['c1', 'c2']) box.run(['stop', '--force', n]);
      },
    );
  },
);
