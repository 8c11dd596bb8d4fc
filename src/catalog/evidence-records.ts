// Written by the tests (test/helpers/evidence.ts) when they pass; not by hand. See src/catalog/evidence.ts.
import type { Evidence } from './evidence.js';

export const EVIDENCE_RECORDS: Evidence[] = [
  {"distro":"almalinux9","test":"test/unit/catalog-real-metadata.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"CentOS Stream 9's: all but almalinux-release"},
  {"distro":"centos7","test":"test/integration/signatures-real.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"a real CentOS 7 package verifies with the key the catalog names, and not with others"},
  {"distro":"centos7","test":"test/integration/stub-rpm.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"the stub's rpm verifies real CentOS 7 packages with the catalog's key, its SHA-1 bindings accepted"},
  {"distro":"centos9stream","test":"test/unit/catalog-real-metadata.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"every package of both passes is in the real BaseOS or AppStream"},
  {"distro":"gentoo","test":"test/integration/signatures-real.test.ts","source":"real-metadata","reached":"metadata","arch":"x86_64","what":"its real signed pointer file, found signed by the pinned key's subkey (the real key export we have has expired)"}
];
