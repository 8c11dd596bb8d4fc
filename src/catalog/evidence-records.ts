// Written by the tests (test/helpers/evidence.ts) when they pass; not by hand. See src/catalog/evidence.ts.
import type { Evidence } from './evidence.js';

export const EVIDENCE_RECORDS: Evidence[] = [
  {"distro":"almalinux9","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"almalinux9","test":"test/unit/catalog-real-metadata.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"CentOS Stream 9's: all but almalinux-release"},
  {"distro":"centos10stream","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"centos6","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"centos7","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"centos7","test":"test/integration/signatures-real.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"a real CentOS 7 package verifies with the key the catalog names, and not with others"},
  {"distro":"centos7","test":"test/integration/stub-rpm.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"the stub's rpm verifies real CentOS 7 packages with the catalog's key, its SHA-1 bindings accepted"},
  {"distro":"centos8stream","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"centos8stream","test":"test/slow/create-el.test.ts","source":"fixture-binaries","reached":"ssh","arch":"x86_64","what":"Debian 12's binaries as RPMs under CentOS Stream 8's names, signed; pass 2 by Debian 12's dnf in the target"},
  {"distro":"centos9stream","test":"test/e2e/create-el.test.ts","source":"fixture-binaries","reached":"ssh","arch":"x86_64","what":"Debian 12's binaries as RPMs under CentOS Stream 9's names, signed; pass 2 by Debian 12's dnf in the target"},
  {"distro":"centos9stream","test":"test/integration/dnf-agreement.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"both passes solved as dnf solves them, on the real AppStream and a BaseOS stand-in"},
  {"distro":"centos9stream","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"centos9stream","test":"test/unit/catalog-real-metadata.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"every package of both passes is in the real BaseOS or AppStream"},
  {"distro":"debian12","test":"test/e2e/create.test.ts","source":"real-mirror","reached":"ssh","arch":"x86_64"},
  {"distro":"debian13","test":"test/slow/create-debian13.test.ts","source":"real-mirror","reached":"ssh","arch":"x86_64"},
  {"distro":"fedora42","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"gentoo","test":"test/integration/gentoo-stage3.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"a stage3 the test makes, signed by a test key"},
  {"distro":"gentoo","test":"test/integration/signatures-real.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"its real signed pointer file, found signed by the pinned key's subkey (the real key export we have has expired)"},
  {"distro":"gentoo","test":"test/slow/create-gentoo.test.ts","source":"fixture-binaries","reached":"ssh","arch":"x86_64","what":"Debian 12's binaries as a systemd stage3, published and signed as Gentoo's; emerge-webrsync and emerge are stand-ins (no Portage here): no ebuild repository fetched, no package built or fetched, the kernel installed as installkernel with dracut does"},
  {"distro":"miraclelinux8","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"rocky8","test":"test/integration/rpm-bootstrap.test.ts","source":"synthetic","reached":"bootstrap","arch":"x86_64","what":"vmstub's RPM bootstrap on packages the test builds, not the distribution's"},
  {"distro":"ubuntu2004","test":"test/slow/create-ubuntu.test.ts","source":"fixture-binaries","reached":"ssh","arch":"x86_64","what":"Debian 12's packages under focal's suite names"},
  {"distro":"ubuntu2204","test":"test/slow/create-ubuntu.test.ts","source":"fixture-binaries","reached":"ssh","arch":"x86_64","what":"Debian 12's packages under jammy's suite names"},
  {"distro":"ubuntu2404","test":"test/e2e/create-ubuntu.test.ts","source":"fixture-binaries","reached":"ssh","arch":"x86_64","what":"Debian 12's packages under noble's suite names"},
  {"distro":"ubuntu2404","test":"test/integration/install-ubuntu.test.ts","source":"fixture-binaries","reached":"install","arch":"x86_64","what":"Debian 12's packages under noble's suite names"},
  {"distro":"ubuntu2604","test":"test/slow/create-ubuntu.test.ts","source":"fixture-binaries","reached":"ssh","arch":"x86_64","what":"Debian 12's packages under resolute's suite names"}
];
