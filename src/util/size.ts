import { usageError } from './errors.js';

const UNITS: Record<string, number> = {
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/**
 * Parses a size such as `8G`, `512M`, `1.5G`, `64KiB` into bytes (binary units).
 * A unit is required: a bare number is too easy to misread (bytes? GiB as the original `vm allocate`?).
 */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT])(?:i?B)?\s*$/i.exec(text);
  // Inside a spec the field is named already: what = '' says only the value.
  const said = `${what} '${text}'`.trim();
  if (!m) {
    if (/^\s*\d+(?:\.\d+)?\s*$/.test(text)) {
      throw usageError(`${said} needs a unit, e.g. ${text.trim()}G or ${text.trim()}M`);
    }
    throw usageError(`${said} is not a size (examples: 8G, 512M, 1.5T)`);
  }
  const bytes = Math.round(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
  if (bytes <= 0) throw usageError(`${said} must be larger than zero`);
  return bytes;
}

/** Memory in MiB: a bare number means MiB (as QEMU's -m), or a size with a unit. */
export function parseMemoryMiB(text: string, what = 'memory'): number {
  const mib = /^\s*\d+\s*$/.test(text) ? Number(text) : parseSize(text, what) / 1024 ** 2;
  const said = `${what} '${text}'`.trim();
  if (!Number.isInteger(mib)) throw usageError(`${said} is not a whole number of MiB`);
  if (mib < 64) throw usageError(`${said} is too small (at least 64M)`);
  return mib;
}

/** Virtual CPUs: a whole number from 1 to 64, as a flag's text or a spec file's number. */
export function parseCpuCount(text: string | number, what = 'cpus'): number {
  const n = typeof text === 'number' ? text : /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw usageError(`${`${what} '${text}'`.trim()} must be a whole number from 1 to 64`);
  return n;
}

/** Human form of a byte count: 8.0 GiB, 512 MiB, 300 B. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  if (i === 0) return `${bytes} B`;
  const shown = Number.isInteger(value) ? value.toFixed(0) : value.toFixed(1);
  return `${shown} ${units[i]}`;
}
