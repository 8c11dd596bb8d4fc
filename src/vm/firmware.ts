import { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { VmstubError } from '../util/errors.js';
import type { Arch } from '../util/arch.js';
import { ARCH_TRAITS } from './qemu-argv.js';

/** The parts of a QEMU firmware descriptor (docs/interop/firmware.json) vmstub reads. */
export interface FirmwareDescriptor {
  'interface-types'?: string[];
  mapping?: {
    device?: string;
    executable?: { filename?: string; format?: string };
    'nvram-template'?: { filename?: string; format?: string };
  };
  targets?: { architecture?: string; machines?: string[] }[];
  features?: string[];
}

export interface ChosenFirmware {
  descriptor: string;
  code: string;
  varsTemplate: string;
  format: 'raw' | 'qcow2';
  requiresSmm: boolean;
}

/** Search order from QEMU's spec: /etc and the user's config override /usr/share, file by file. */
export function firmwareDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    '/etc/qemu/firmware',
    join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'qemu', 'firmware'),
    '/usr/share/qemu/firmware',
  ];
}

const globMatches = (glob: string, text: string): boolean =>
  new RegExp(
    '^' +
      glob
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  ).test(text);

/** Features that make a firmware harder to use for plain direct-kernel boot; fewer is better. */
const HEAVY_FEATURES = ['secure-boot', 'enrolled-keys', 'requires-smm', 'amd-sev', 'intel-tdx'];

/**
 * Picks a UEFI firmware for the machine: flash-mapped with a variables template, for the guest
 * architecture and machine type, preferring the plainest one (no Secure Boot, no SMM), then file order.
 */
export function chooseFirmware(
  descriptors: { file: string; json: FirmwareDescriptor }[],
  arch: Arch,
): ChosenFirmware | undefined {
  const machineProbe = ARCH_TRAITS[arch].machine === 'q35' ? 'pc-q35-99.0' : 'virt-99.0';
  const candidates = descriptors
    .filter(({ json }) => {
      const m = json.mapping;
      return (
        json['interface-types']?.includes('uefi') &&
        m?.device === 'flash' &&
        m.executable?.filename &&
        m['nvram-template']?.filename &&
        json.targets?.some(
          (t) => t.architecture === arch && (t.machines ?? []).some((g) => globMatches(g, machineProbe)),
        )
      );
    })
    .map((d) => ({ ...d, weight: (d.json.features ?? []).filter((f) => HEAVY_FEATURES.includes(f)).length }))
    .sort((a, b) => a.weight - b.weight || a.file.localeCompare(b.file));
  const best = candidates[0];
  if (!best) return undefined;
  const m = best.json.mapping!;
  return {
    descriptor: best.file,
    code: m.executable!.filename!,
    varsTemplate: m['nvram-template']!.filename!,
    format: m.executable!.format === 'qcow2' ? 'qcow2' : 'raw',
    requiresSmm: (best.json.features ?? []).includes('requires-smm'),
  };
}

export function readFirmwareDescriptors(dirs = firmwareDirs()): { file: string; json: FirmwareDescriptor }[] {
  const byName = new Map<string, string>();
  for (const dir of [...dirs].reverse()) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (f.endsWith('.json')) byName.set(f, join(dir, f));
  }
  const out: { file: string; json: FirmwareDescriptor }[] = [];
  for (const [name, path] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
    try {
      out.push({ file: name, json: JSON.parse(readFileSync(path, 'utf8')) as FirmwareDescriptor });
    } catch {
      // an unreadable descriptor is skipped, as QEMU's own consumers do
    }
  }
  return out;
}

/** Debian's package of each architecture's UEFI firmware. */
const UEFI_PACKAGES: Partial<Record<Arch, string>> = { x86_64: 'ovmf', aarch64: 'qemu-efi-aarch64' };

/** The firmware for an instance, with its own copy of the variables store (kept across boots). */
export function prepareUefi(arch: Arch, varsCopy: string): ChosenFirmware & { vars: string } {
  const fw = chooseFirmware(readFirmwareDescriptors(), arch);
  if (!fw) {
    throw new VmstubError(
      `--uefi: no UEFI firmware for ${arch} found in ${firmwareDirs().join(', ')} (Debian: apt-get install ${UEFI_PACKAGES[arch] ?? 'ovmf'})`,
    );
  }
  if (!existsSync(varsCopy)) {
    copyFileSync(fw.varsTemplate, varsCopy);
    chmodSync(varsCopy, 0o600);
  }
  return { ...fw, vars: varsCopy };
}
