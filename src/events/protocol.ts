/**
 * The contract between the host and the guest (the stub and its installer): what the host passes
 * through fw_cfg, and the events the guest sends back, one JSON object per line on the virtio-serial
 * port EVENTS_PORT (which the host writes to events.ndjson in the instance directory). Both sides take
 * every name from here.
 */
import { existsSync } from 'node:fs';

/** The virtio-serial port the guest writes its events to. */
export const EVENTS_PORT = 'org.vmstub.events';

/** Where vmstub's fw_cfg items live; QEMU wants every item under opt/. */
export const FW_CFG_PREFIX = 'opt/org.vmstub/';

/** What the host passes the guest through fw_cfg. */
export const FW_CFG_ITEMS = {
  /** The instance name (every VM). */
  name: 'name',
  /** The resolved install spec, JSON (vmstub create). */
  installSpec: 'install-spec',
  /** The public keys to authorize, one per line (every VM vmstub starts). */
  sshAuthorizedKeys: 'ssh-authorized-keys',
  /** The host's time zone (every VM vmstub starts). */
  timezone: 'timezone',
  /** The package cache's proxy URL with its token, for this boot's install (vmstub create). */
  packageCache: 'package-cache',
  /** SSH host keys the host made for the system being installed: JSON, file name -> content (vmstub create, clone). */
  sshHostKeys: 'ssh-host-keys',
  /** The keyring that signs the mirror, from the file create --keyring named on the host. */
  mirrorKeyring: 'mirror-keyring',
  /** A LUKS passphrase for the boot handoff (given by the user with --fw-cfg). */
  luksPassphrase: 'luks-passphrase',
  /** A clone's first boot: the source's passphrase, which the clone's container stops taking (vmstub clone). */
  luksSourcePassphrase: 'luks-source-passphrase',
  /** The digests of the direct boot files the host has (stubs that cannot kexec; src/boot/boot-export.ts). */
  bootDigests: 'boot-digests',
} as const;

export type FwCfgItemName = keyof typeof FW_CFG_ITEMS;

/** The item's name as QEMU's -fw_cfg takes it. */
export const fwCfgName = (item: FwCfgItemName): string => `${FW_CFG_PREFIX}${FW_CFG_ITEMS[item]}`;

/** Where a guest with the qemu_fw_cfg driver reads the item (its sysfs). */
export const fwCfgSysfsPath = (item: FwCfgItemName): string =>
  `/sys/firmware/qemu_fw_cfg/by_name/${fwCfgName(item)}/raw`;

/** Where the stub reads the item: the driver's sysfs, or the fw_cfg disk of a machine without fw_cfg. */
export const fwCfgGuestPath = (item: FwCfgItemName): string =>
  existsSync(FW_CFG_FALLBACK_DIR) ? `${FW_CFG_FALLBACK_DIR}/${fwCfgName(item)}` : fwCfgSysfsPath(item);

/** Where the stub's init unpacks the fw_cfg disk of a machine without fw_cfg (src/vm/fw-cfg-disk.ts). */
export const FW_CFG_FALLBACK_DIR = '/run/vmstub/fw_cfg';

/** What the installer tells the host (over the events port) and the console, one object per line. */
export type InstallEvent =
  | { type: 'install-start'; distro: string; hostname: string; steps: { id: string; title: string }[] }
  | { type: 'step-start'; step: string; title: string; index: number; total: number }
  | { type: 'step-end'; step: string; seconds: number }
  | { type: 'progress'; step: string; phase: string; done?: number; total?: number }
  | { type: 'log'; step: string; line: string }
  | { type: 'install-done'; seconds: number; hostKeys: string[]; kernel: string; rootUuid?: string }
  | {
      type: 'install-failed';
      step: string;
      reason: string;
      log: string;
      /** The new root's filesystem filled up: growing the disk and resuming is the way on. */
      diskFull?: boolean;
    };

/** What the stub's boot handoff reports. */
export type StubEvent =
  | {
      type: 'handoff';
      status: 'kexec';
      kernel: string;
      initrds: string[];
      cmdline: string;
      source: string;
      device: string;
    }
  | {
      type: 'handoff';
      /** No kexec in this stub: the files went to the host, which boots them (src/boot/boot-export.ts). */
      status: 'host-boot';
      kernel: string;
      initrds: string[];
      cmdline: string;
      source: string;
      device: string;
      unchanged: boolean;
    }
  | { type: 'handoff'; status: 'nothing-installed' | 'skipped'; reason: string }
  | { type: 'handoff'; status: 'failed'; reason: string };

export type TimedEvent<E> = E & { time: string };

export function encodeEvent<E extends object>(event: E, now = new Date()): string {
  return JSON.stringify({ ...event, time: now.toISOString() }) + '\n';
}

/** Parses an events file's lines; a torn last line (still being written) is left for the next read. */
export function decodeEvents<E>(text: string): { events: TimedEvent<E>[]; rest: string } {
  const lines = text.split('\n');
  const rest = lines.pop() ?? '';
  const events: TimedEvent<E>[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    try {
      events.push(JSON.parse(line) as TimedEvent<E>);
    } catch {
      // not an event (a guest may print anything on its own): ignore it
    }
  }
  return { events, rest };
}
