import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { arch as hostArchNode, release } from 'node:os';
import { join } from 'node:path';
import { usageError } from '../util/errors.js';
import { run, which } from '../util/exec.js';
import { cacheDir } from '../util/paths.js';
import { archOfNode, type Arch } from '../util/arch.js';
import type { Accel } from './definition.js';
import { ARCH_TRAITS } from './qemu-argv.js';

export interface AccelDecision {
  accel: 'kvm' | 'tcg';
  /** Said to the user once, when the decision was made by a fresh probe. */
  note?: string;
}

export function hostArch(): Arch | undefined {
  return archOfNode(hostArchNode());
}

/** The QEMU that runs guests of this architecture, or a usage error naming the package that has it. */
export function requireQemu(arch: Arch): string {
  const { binary, qemuPackage } = ARCH_TRAITS[arch];
  const found = which(binary);
  if (!found)
    throw usageError(
      `${binary} not found: ${arch} guests need Debian's ${qemuPackage} (apt-get install ${qemuPackage})`,
    );
  return found;
}

/**
 * A 64 KiB "BIOS" whose reset vector writes 0x31 to the isa-debug-exit port: QEMU then exits with
 * status (0x31 << 1) | 1 = 99. Booted with -cpu host, it exercises what breaks on hosts where /dev/kvm
 * exists but KVM cannot run guests (on our machines QEMU aborts setting MSRs before the first instruction).
 */
export function kvmProbeFirmware(): Buffer {
  const image = Buffer.alloc(65536, 0xf4); // hlt everywhere
  Buffer.from([0xb0, 0x31, 0xe6, 0xf4, 0xf4]).copy(image, 0xfff0); // mov al,0x31; out 0xf4,al; hlt
  return image;
}
export const KVM_PROBE_EXIT = 99;

/** What both probes run on: the KVM machine a real VM gets, with nothing else attached. */
const PROBE_MACHINE = [
  '-accel',
  'kvm',
  '-machine',
  'q35',
  '-cpu',
  'host',
  '-nodefaults',
  '-no-user-config',
  '-display',
  'none',
];

interface ProbeRecord {
  key: string;
  usable: boolean;
  reason: string;
  /** Whether a Linux kernel was booted under KVM too (the firmware probe alone is not enough). */
  kernelChecked: boolean;
}

/**
 * The second probe: the kernel about to be booted, with no root file system, must get as far as its
 * panic for that (then, with -no-reboot, QEMU exits). Seen on a build machine: the firmware probe runs,
 * but KVM cannot emulate an instruction the kernel's decompressor uses ("emulation failure") and the
 * guest stops dead; a working KVM reaches the panic in about a second.
 */
async function probeKernel(qemu: string, kernel: string): Promise<{ usable: boolean; reason: string }> {
  const r = await run(
    qemu,
    [
      ...PROBE_MACHINE,
      '-m',
      '256',
      '-kernel',
      kernel,
      '-append',
      'console=ttyS0 panic=-1',
      '-no-reboot',
      '-serial',
      'stdio',
    ],
    { timeoutMs: 20_000 },
  );
  if (/Kernel panic - not syncing/.test(r.stdout.toString('utf8')))
    return { usable: true, reason: 'a kernel booted' };
  const failure = /emulation failure|KVM internal error[^\n]*/.exec(r.stderr)?.[0];
  return { usable: false, reason: `a Linux kernel does not boot under KVM (${failure ?? 'it hung'})` };
}

async function probeKvm(qemu: string, kernel?: string): Promise<ProbeRecord & { fresh: boolean }> {
  const dir = join(cacheDir(), 'probes');
  const st = statSync(qemu);
  // v3: records say whether a kernel was probed; one that passed without a kernel is probed again
  // when a kernel is at hand.
  const key = `v3:${qemu}:${st.mtimeMs}:${release()}:${statSync('/dev/kvm').rdev}`;
  const recordPath = join(dir, 'kvm.json');
  try {
    const rec = JSON.parse(readFileSync(recordPath, 'utf8')) as ProbeRecord;
    if (rec.key === key && (rec.kernelChecked || !rec.usable || !kernel)) return { ...rec, fresh: false };
  } catch {
    // no record yet
  }
  mkdirSync(dir, { recursive: true });
  const fw = join(dir, 'kvm-probe.bin');
  if (!existsSync(fw)) writeFileSync(fw, kvmProbeFirmware());
  const r = await run(
    qemu,
    [...PROBE_MACHINE, '-m', '16', '-bios', fw, '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'],
    { timeoutMs: 5000 },
  );
  let usable = r.code === KVM_PROBE_EXIT;
  let reason = usable ? 'probe guest ran' : '';
  if (usable && kernel) ({ usable, reason } = await probeKernel(qemu, kernel));
  const lines = r.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.includes('warning:'));
  const detail = (lines.find((l) => /error/i.test(l)) ?? lines.pop())?.replace(
    /^qemu-system-\w+: (error: )?/,
    '',
  );
  reason ||= detail ?? (r.signal ? 'probe guest hung' : `probe exited with ${r.code}`);
  const rec: ProbeRecord = { key, usable, reason, kernelChecked: usable && Boolean(kernel) };
  writeFileSync(recordPath, JSON.stringify(rec) + '\n');
  return { ...rec, fresh: true };
}

function kvmDeviceUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** auto: KVM only where it really works (probed once and remembered); else TCG, said once. */
export async function resolveAccel(
  requested: Accel,
  guestArch: Arch,
  kernel?: string,
): Promise<AccelDecision> {
  if (requested === 'tcg') return { accel: 'tcg' };
  const sameArch = guestArch === hostArch();
  if (requested === 'kvm') {
    if (!sameArch)
      throw usageError(
        `--accel kvm: KVM runs guests of the host's architecture only (${hostArch()}), not ${guestArch}; use --accel tcg (or auto)`,
      );
    if (!kvmDeviceUsable())
      throw usageError('--accel kvm: /dev/kvm is missing or not accessible to this user');
    return { accel: 'kvm' };
  }
  if (!sameArch) return { accel: 'tcg' };
  if (!kvmDeviceUsable()) return { accel: 'tcg' };
  if (guestArch !== 'x86_64') return { accel: 'kvm' };
  const qemu = which(ARCH_TRAITS[guestArch].binary);
  if (!qemu) return { accel: 'tcg' };
  const probe = await probeKvm(qemu, kernel);
  if (probe.usable && probe.kernelChecked) return { accel: 'kvm' };
  if (probe.usable)
    return {
      accel: 'tcg',
      note: 'KVM ran its probe, but no Linux kernel was at hand to check that it boots one (on some hosts it does not); using TCG software emulation (--accel kvm to use KVM anyway)',
    };
  return {
    accel: 'tcg',
    note: probe.fresh
      ? `KVM does not work here (${probe.reason}); using TCG software emulation, which is much slower`
      : undefined,
  };
}
