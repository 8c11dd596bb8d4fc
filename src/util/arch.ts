import { usageError } from './errors.js';

/** The architectures vmstub builds, boots and installs, named as everywhere in vmstub (uname -m). */
export const ARCHES = ['x86_64', 'aarch64', 'riscv64'] as const;
export type Arch = (typeof ARCHES)[number];

/** Debian's (and Ubuntu's) name for each. */
export const DEBIAN_ARCH: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64', riscv64: 'riscv64' };

/** Node's name (process.arch) for each. */
const NODE_ARCH: Record<string, Arch> = { x64: 'x86_64', arm64: 'aarch64', riscv64: 'riscv64' };

export const archOfNode = (nodeArch: string): Arch | undefined => NODE_ARCH[nodeArch];

/**
 * RPM package architectures rpm-bootstrap accepts: ours, plus the two other EL architectures, which
 * nothing here boots but whose repositories the bootstrap reads the same way.
 */
export const RPM_ARCHES = [...ARCHES, 'ppc64le', 's390x'] as const;

/** Our name, or Debian's, to ours. */
export function parseArch(text: string): Arch {
  if ((ARCHES as readonly string[]).includes(text)) return text as Arch;
  const byDebian = Object.entries(DEBIAN_ARCH).find(([, d]) => d === text);
  if (byDebian) return byDebian[0] as Arch;
  throw usageError(`unknown architecture '${text}' (${ARCHES.join(', ')})`);
}
