/**
 * `vmstub create --distro ubuntu2404` to a verified SSH login, then through the handoff again, against
 * a fixture mirror these machines can serve (Debian 12's packages under noble's suite names, signed by
 * a test key given with --keyring). The other Ubuntu releases take the same path in the slow tier.
 */
import { findDistro } from '../../src/catalog/index.js';
import type { DebDistro } from '../../src/catalog/types.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';
import { describeUbuntuCreate, UBUNTU_FIXTURE_WHAT } from '../helpers/ubuntu-fixture.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
const distro = findDistro('ubuntu2404') as DebDistro;
describeUbuntuCreate(distro, () =>
  recordEvidence(import.meta.url, [
    { distro: distro.id, source: 'fixture-binaries', reached: 'ssh', what: UBUNTU_FIXTURE_WHAT(distro) },
  ]),
);
