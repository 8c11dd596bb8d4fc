/**
 * The slow tier: the bootstrap in the stub (`create --bootstrap-on guest`, the path a machine without
 * mmdebstrap takes), interrupted in the bootstrap and resumed, against the real mirror; then the same
 * system bootstrapped on the host (--fresh), which must have the same packages at the same versions and
 * the same configuration. Moved from test/e2e/create.test.ts, where the install in the stub took a
 * quarter of CI's hour; the e2e create bootstraps on the host and interrupts the unpack instead.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { processesUsing, Sandbox } from '../helpers/cli.js';
import { faultyMirror, type FaultyMirror } from '../helpers/fault-proxy.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';
import { plannedFiles, systemFacts } from '../helpers/system-facts.js';
import { cachedDownloads, ndjson, webSystem } from '../helpers/web-spec.js';
import type { Plan } from '../../src/installer/plan/index.js';

describe(
  'vmstub create --bootstrap-on guest (real mirror), against the host bootstrap',
  { skip: !isRoot && 'needs root (the tests share root-owned caches)' },
  () => {
    const box = new Sandbox();
    const { systemArgs } = webSystem(box.home);
    let mirror: FaultyMirror | undefined;
    before(() => useStub(box));
    after(async () => {
      for (const n of ['guest1', 'host1']) box.run(['stop', '--force', n]);
      await mirror?.close();
      rmSync(box.home, { recursive: true, force: true });
    });
    const consoleTail = (name: string) =>
      `console (last 60 lines):\n${box.run(['console', name, '--log']).stdout.split('\n').slice(-60).join('\n')}`;
    const inStub: Record<string, string> = {};
    const files: string[] = [];

    it(
      'interrupted (SIGTERM) in the bootstrap: the VM stops, the instance says where it was',
      { timeout: 20 * 60_000 },
      async () => {
        const createArgs = ['create', 'guest1', ...systemArgs, '--bootstrap-on', 'guest', '--json'];
        const r = await box.runAndKill(createArgs, /"type":"step-start","step":"bootstrap"/, 'SIGTERM', {
          delayMs: 15_000,
          timeoutMs: 20 * 60_000,
        });
        assert.ok(r.killedAt, `the bootstrap never started: ${r.stderr}`);
        assert.equal(r.code, 143, r.stderr);
        assert.match(r.stderr, /interrupted by SIGTERM; undoing: the install in guest1/);
        const [info] = JSON.parse(box.run(['list', '--json']).stdout) as {
          install: { phase: string; step: string };
        }[];
        assert.deepEqual([info?.install.phase, info?.install.step], ['interrupted', 'bootstrap']);
        assert.deepEqual(processesUsing(box.instanceDir('guest1')), [], 'no QEMU left');
      },
    );

    it(
      'vmstub resume bootstraps again in the stub, through the package cache, and logs in',
      { timeout: 45 * 60_000 },
      async () => {
        const r = await box.runAsync(['resume', 'guest1', '--json'], { timeoutMs: 45 * 60_000 });
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${consoleTail('guest1')}`);
        assert.match(
          r.stderr,
          /install interrupted at bootstrap; starting the install over on the same disk \(attempt 2\)/,
        );
        assert.ok(
          cachedDownloads(r.stderr) > 100,
          `the stub's apt went through the package cache: ${r.stderr}`,
        );
        assert.equal(ndjson(r.stdout).at(-1)?.type, 'result');
        assert.match(
          readFileSync(join(box.instanceDir('guest1'), 'install.log'), 'utf8'),
          /left by the unfinished install; starting over/,
        );
        const ssh = (...c: string[]) => box.sshRoot('guest1', c);
        files.push(...plannedFiles(JSON.parse(box.run(['plan', ...systemArgs, '--json']).stdout) as Plan));
        assert.ok(files.includes('/etc/fstab') && files.includes('/etc/initramfs-tools/conf.d/vmstub.conf'));
        Object.assign(inStub, systemFacts(ssh, files, 'guest1'));
        assert.ok(inStub.packages!.split('\n').length > 100, inStub.packages);
        // The spec file forwards a fixed host port: only one of the two may run at a time.
        assert.equal(box.run(['stop', 'guest1'], { timeoutMs: 300_000 }).code, 0);
      },
    );

    it(
      'bootstrapped on the host (--fresh): the same packages and configuration as the install in the stub',
      { timeout: 30 * 60_000 },
      async () => {
        mirror = await faultyMirror('http://deb.debian.org/', []);
        const r = await box.runAsync(
          [
            ...['create', 'host1', ...systemArgs, '--fresh'],
            ...['--mirror', `${mirror.url}/debian`, '--security-mirror', `${mirror.url}/debian-security`],
          ],
          { timeoutMs: 30 * 60_000 },
        );
        assert.equal(r.code, 0, `${r.stderr}\n${consoleTail('host1')}`);
        assert.match(r.stderr, /bootstrapping Debian 12 \(bookworm\) on the host/);
        const onHost = systemFacts((...c) => box.sshRoot('host1', c), files, 'host1', `${mirror.url}/`);
        assert.equal(onHost.packages, inStub.packages, 'the same packages at the same versions');
        assert.equal(onHost.config, inStub.config, 'the same files written, the same units enabled');
      },
    );
  },
);
