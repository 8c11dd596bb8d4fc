import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { runHandoff } from '../boot/handoff.js';
import { EventSink } from '../events/sink.js';
import { run, which } from '../util/exec.js';
import { hostArch } from '../vm/accel.js';
import { fwCfgGuestPath, type InstallEvent } from '../events/protocol.js';
import { executePlan, InstallFailure } from './execute.js';
import { buildPlan } from './plan/index.js';
import { resolveSpec, type InstallSpec, type SpecInput, type SpecSource } from './spec.js';

export const INSTALL_LOG = '/var/log/vmstub-install.log';

/** Loads the fw_cfg driver, unless the firmware says this is not a QEMU guest (install --target-dir on a host). */
async function loadFwCfg(): Promise<void> {
  if (existsSync('/sys/firmware/qemu_fw_cfg')) return;
  const vendor = readIf('/sys/class/dmi/id/sys_vendor');
  if (vendor !== undefined && !vendor.startsWith('QEMU')) return;
  await run(which('modprobe') ?? 'modprobe', ['-q', 'qemu_fw_cfg']);
}

const readIf = (path: string): string | undefined =>
  existsSync(path) ? readFileSync(path, 'utf8') : undefined;

/** Where the stub keeps the mirror's keyring the host passed (its path on the host means nothing here). */
export const STUB_MIRROR_KEYRING = '/run/vmstub-install/mirror-keyring';

/** The spec the host passed through fw_cfg (vmstub create), if any, with the keyring it passed beside it. */
export async function fwCfgSpec(): Promise<SpecInput | undefined> {
  await loadFwCfg();
  const text = readIf(fwCfgGuestPath('installSpec'));
  if (!text) return undefined;
  const input = JSON.parse(text) as SpecInput;
  const keyring = fwCfgGuestPath('mirrorKeyring');
  if (input.keyring && existsSync(keyring)) {
    mkdirSync(dirname(STUB_MIRROR_KEYRING), { recursive: true });
    writeFileSync(STUB_MIRROR_KEYRING, readFileSync(keyring));
    input.keyring = STUB_MIRROR_KEYRING;
  }
  return input;
}

/** The package cache the host runs for this install (vmstub create), as an http proxy URL. */
export async function fwCfgPackageCache(): Promise<string | undefined> {
  await loadFwCfg();
  return readIf(fwCfgGuestPath('packageCache'))?.trim() || undefined;
}

/** The SSH host keys the host made for the system this boot installs (vmstub create, clone). */
export async function fwCfgHostKeys(): Promise<Record<string, string> | undefined> {
  await loadFwCfg();
  const text = readIf(fwCfgGuestPath('sshHostKeys'));
  return text ? (JSON.parse(text) as Record<string, string>) : undefined;
}

/** Defaults inside the stub: the host's keys and time zone when it passed them (every vmstub run does). */
export async function stubDefaults(hostname: string) {
  await loadFwCfg();
  const keys = (readIf(fwCfgGuestPath('sshAuthorizedKeys')) ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return {
    hostname,
    timezone: readIf(fwCfgGuestPath('timezone'))?.trim() || 'UTC',
    sshKeys: keys,
    arch: hostArch() ?? 'x86_64',
  };
}

/** One line for the console per step and per bootstrap phase; the full log goes to the log file. */
export function consoleLine(e: InstallEvent): string | undefined {
  switch (e.type) {
    case 'install-start':
      return `vmstub: installing ${e.distro} as ${e.hostname} (${e.steps.length} steps)`;
    case 'step-start':
      return `vmstub: [${e.index}/${e.total}] ${e.title}`;
    case 'progress':
      return e.done === undefined
        ? `vmstub:       ${e.phase}`
        : e.done % 25 === 0
          ? `vmstub:       ${e.phase}: ${e.done}${e.total ? `/${e.total}` : ''}`
          : undefined;
    case 'install-done':
      return `vmstub: installed in ${e.seconds} s; kernel ${e.kernel}`;
    case 'install-failed':
      return `vmstub: install FAILED at step ${e.step}: ${e.reason} (log: ${e.log})`;
    default:
      return undefined;
  }
}

/**
 * Installs inside the stub and, unless told not to, hands over to the new system at once (the boot
 * handoff's own code, without a round trip through the stub's boot). Returns the exit status.
 */
export async function installInStub(
  spec: InstallSpec,
  o: {
    boot: boolean;
    print: (line: string) => void;
    /** Every installer event as it happens (install --json). */
    onEvent?: (e: InstallEvent) => void;
    targetDir?: string;
    /** The host's package cache (http proxy URL) for the install's downloads. */
    downloadProxy?: string;
    /** SSH host keys the host made for this system. */
    hostKeys?: Record<string, string>;
  },
): Promise<number> {
  const events = new EventSink();
  const plan = buildPlan(spec);
  try {
    await executePlan(plan, {
      target: o.targetDir,
      logFile: INSTALL_LOG,
      downloadProxy: o.downloadProxy,
      hostKeys: o.hostKeys,
      emit: (e) => {
        events.emit(e);
        o.onEvent?.(e);
        const line = consoleLine(e);
        if (line) o.print(line);
      },
    });
  } catch (e) {
    if (!(e instanceof InstallFailure)) {
      const reason = e instanceof Error ? e.message : String(e);
      events.emit({ type: 'install-failed', step: 'start', reason, log: INSTALL_LOG });
      o.print(`vmstub: install FAILED: ${reason}`);
    }
    events.close();
    return 1;
  }
  if (!o.boot) {
    o.print('vmstub: reboot to start the installed system');
    events.close();
    return 0;
  }
  o.print('vmstub: handing over to the installed system');
  await runHandoff((line) => o.print(`vmstub-handoff: ${line}`), events, { atBoot: false });
  o.print('vmstub: the handoff did not happen; the system is installed: reboot to start it');
  return 1;
}

/** Resolves what `vmstub install` was given inside the stub into a spec. */
export async function stubSpec(input: SpecInput, source: string | SpecSource): Promise<InstallSpec> {
  return resolveSpec(input, await stubDefaults(input.hostname ?? input.distro ?? 'vmstub'), source);
}
