/**
 * The slow tier: `vmstub create` of every other Ubuntu release whose recipe differs from 24.04's (20.04
 * and 22.04 without systemd-resolved and with older kernels' filesystem features; 26.04), each to a
 * verified SSH login and through the handoff again, against a fixture mirror of Debian 12's packages
 * under the release's suite names.
 */
import { findDistro } from '../../src/catalog/index.js';
import type { DebDistro } from '../../src/catalog/types.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';
import { describeUbuntuCreate, UBUNTU_FIXTURE_WHAT } from '../helpers/ubuntu-fixture.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
for (const id of ['ubuntu2004', 'ubuntu2204', 'ubuntu2604']) {
  const distro = findDistro(id) as DebDistro;
  describeUbuntuCreate(distro, () =>
    recordEvidence(import.meta.url, [
      { distro: id, source: 'fixture-binaries', reached: 'ssh', what: UBUNTU_FIXTURE_WHAT(distro) },
    ]),
  );
}
