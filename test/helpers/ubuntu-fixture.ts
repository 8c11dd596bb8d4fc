import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname, join } from 'node:path';
import { findDistro } from '../../src/catalog/index.js';
import type { DebDistro } from '../../src/catalog/types.js';
import {
  buildMirror,
  debianPool,
  debsIn,
  dummyDeb,
  serveDirectory,
  type FixtureMirror,
} from './deb-mirror.js';

export const UBUNTU = findDistro('ubuntu2404') as DebDistro;
export const STAND_IN_KERNEL = 'linux-image-cloud-amd64';

export interface ServedMirror {
  mirror: FixtureMirror;
  url: string;
  server: Server;
  requests: string[];
}

/**
 * Ubuntu 24.04's package set as a signed fixture mirror on loopback: Debian 12's packages under noble's
 * suite names, with stand-ins for linux-image-virtual (pulling in Debian's cloud kernel) and
 * ubuntu-keyring. With lean, without eatmydata (the bootstrap's speed-up must step aside).
 */
export async function ubuntuFixtureMirror(work: string, o: { lean?: boolean } = {}): Promise<ServedMirror> {
  const packages = [
    ...UBUNTU.packages,
    STAND_IN_KERNEL,
    // mmdebstrap's eatmydata hook fetches these from the target's mirror
    'eatmydata',
    'libeatmydata1',
  ];
  const pool = debianPool(packages);
  const extra = join(work, 'extra');
  mkdirSync(extra, { recursive: true });
  const kernel = dummyDeb(extra, UBUNTU.kernelPackage.x86_64!, [STAND_IN_KERNEL]);
  const keyring = dummyDeb(extra, 'ubuntu-keyring', ['gpgv']);
  const layout = {
    origin: 'Ubuntu',
    suites: [UBUNTU.suite],
    emptySuites: [UBUNTU.updatesSuite, UBUNTU.securitySuite],
    components: UBUNTU.components,
  };
  const debs = debsIn(pool).filter((f) => !o.lean || !/\/(lib)?eatmydata1?_/.test(f));
  const dir = o.lean ? join(work, 'lean', 'mirror') : join(work, 'mirror');
  mkdirSync(dirname(dir), { recursive: true });
  const mirror = buildMirror(dir, [...debs, kernel, keyring], layout);
  const served = await serveDirectory(mirror.dir, 'ubuntu');
  return { mirror, ...served };
}

/** `vmstub install ubuntu2404` into a directory on this host, from a fixture mirror signed by keyring. */
export const ubuntuInstallArgs = (target: string, mirrorUrl: string, keyring: string): string[] => [
  'install',
  'ubuntu2404',
  '--target-dir',
  target,
  '--no-boot',
  '--mirror',
  mirrorUrl,
  '--security-mirror',
  mirrorUrl,
  '--keyring',
  keyring,
];
