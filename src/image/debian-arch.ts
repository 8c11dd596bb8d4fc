import { usageError } from '../util/errors.js';
import type { Arch } from '../vm/definition.js';

/** Debian's (and Ubuntu's) name for an architecture. */
export const DEBIAN_ARCH: Record<Arch, string> = { x86_64: 'amd64', aarch64: 'arm64', riscv64: 'riscv64' };

export function parseArch(text: string): Arch {
  if (text === 'x86_64' || text === 'aarch64' || text === 'riscv64') return text;
  const byDebian = Object.entries(DEBIAN_ARCH).find(([, d]) => d === text);
  if (byDebian) return byDebian[0] as Arch;
  throw usageError(`unknown architecture '${text}' (x86_64, aarch64 or riscv64)`);
}
