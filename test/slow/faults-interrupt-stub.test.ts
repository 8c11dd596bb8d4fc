/**
 * The slow tier: a stub build killed outright (SIGKILL) while mmdebstrap runs: its watchdog ends
 * mmdebstrap, and the next build clears the half-built stage and builds the whole stub (about five
 * minutes). The SIGTERM cases stay in CI (test/integration/faults-interrupt.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { mountsUnder, processesUsing, waitFor } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { stubBuildSandbox } from '../helpers/stub.js';

const BOOTSTRAP_RUNNING = /installing remaining packages/;

describe(
  'a stub build killed outright (Debian mirror)',
  { skip: !isRoot && 'needs root (mmdebstrap --mode=root)' },
  () => {
    const { box, cache, out, build, cleanup } = stubBuildSandbox();
    after(cleanup);

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
