/**
 * The slow tier: `vmstub create` of every other EL entry whose package manager Debian has (dnf 4), each
 * to a verified SSH login and through the handoff again, against a fixture of Debian 12's binaries as
 * RPMs under its names: EL 8's (the rpm database started afresh by the target's rpm, as for Berkeley DB),
 * CentOS Stream 10's (the database under /usr/lib/sysimage), AlmaLinux 9's, and MIRACLE LINUX 8's with
 * its keys taken from its release package. Not here: Fedora (dnf5), CentOS 6 and 7 (yum), whose
 * package managers Debian does not have.
 */
import { findDistro } from '../../src/catalog/index.js';
import type { RpmDistro } from '../../src/catalog/types.js';
import { describeElCreate, EL_FIXTURE_WHAT } from '../helpers/el-create.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
for (const id of ['centos8stream', 'rocky8', 'centos10stream', 'almalinux9', 'miraclelinux8']) {
  const distro = findDistro(id) as RpmDistro;
  describeElCreate(distro, {
    keysFromRelease: distro.keys.from === 'release-package',
    shown: () =>
      recordEvidence(import.meta.url, [
        { distro: id, source: 'fixture-binaries', reached: 'ssh', what: EL_FIXTURE_WHAT(distro) },
      ]),
  });
}
