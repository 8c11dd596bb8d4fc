/**
 * The slow tier: `vmstub create` of every other RPM entry whose package manager Debian has, each to a
 * verified SSH login and through the handoff again, against a fixture of Debian's binaries as RPMs under
 * its names: EL 8's (the rpm database started afresh by the target's rpm, as for Berkeley DB), CentOS
 * Stream 10's (the database under /usr/lib/sysimage), AlmaLinux 9's, MIRACLE LINUX 8's with its keys
 * taken from its release package (all with Debian 12's dnf 4), and Fedora's with dnf5 (Debian
 * unstable's binaries: only unstable has dnf5). Not here: CentOS 6 and 7, whose yum Debian does not
 * have (src/catalog/evidence.ts, NOT_RUN_HERE).
 */
import { findDistro } from '../../src/catalog/index.js';
import type { RpmDistro } from '../../src/catalog/types.js';
import { describeElCreate, EL_FIXTURE_WHAT } from '../helpers/el-create.js';
import { recordEvidence } from '../helpers/evidence.js';
import { isRoot } from '../helpers/fixture.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
for (const id of ['centos8stream', 'rocky8', 'centos10stream', 'almalinux9', 'miraclelinux8', 'fedora42']) {
  const distro = findDistro(id) as RpmDistro;
  describeElCreate(distro, {
    keysFromRelease: distro.keys.from === 'release-package',
    shown: () =>
      recordEvidence(import.meta.url, [
        { distro: id, source: 'fixture-binaries', reached: 'ssh', what: EL_FIXTURE_WHAT(distro) },
      ]),
  });
}
