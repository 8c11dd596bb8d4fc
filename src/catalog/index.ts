import { usageError } from '../util/errors.js';
import { DEB_DISTROS } from './deb.js';
import { GENTOO_DISTROS } from './gentoo.js';
import { RPM_DISTROS } from './rpm.js';
import type { Distro } from './types.js';

export const CATALOG: Distro[] = [...DEB_DISTROS, ...RPM_DISTROS, ...GENTOO_DISTROS];

export function findDistro(id: string): Distro {
  const d = CATALOG.find((x) => x.id === id);
  if (!d) throw usageError(`unknown distribution '${id}' (vmstub distros lists them)`);
  return d;
}
