/**
 * `vmstub create --distro centos9stream` to a verified SSH login, and through the handoff again,
 * against a fixture distribution of real binaries (Debian 12's, as signed RPMs under EL 9's names:
 * test/helpers/el-fixture.ts says what is not Debian's). The other dnf-based EL entries take the same
 * path in the slow tier.
 */
import { findDistro } from '../../src/catalog/index.js';
import type { RpmDistro } from '../../src/catalog/types.js';
import { describeElCreate, EL_FIXTURE_WHAT } from '../helpers/el-create.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
const distro = findDistro('centos9stream') as RpmDistro;
describeElCreate(distro, {
  shown: () =>
    recordEvidence(import.meta.url, [
      { distro: distro.id, source: 'fixture-binaries', reached: 'ssh', what: EL_FIXTURE_WHAT(distro) },
    ]),
});
