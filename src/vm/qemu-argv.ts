import { formatHostFwd, macFor } from './network.js';
import type { Arch } from '../util/arch.js';
import type { DiskSpec, VmDefinition } from './definition.js';
import { EVENTS_PORT, fwCfgName } from '../events/protocol.js';
import { BOOT_EXPORT_PORT } from '../boot/boot-export.js';
import { FW_CFG_DISK_SERIAL, type FwCfgEntry } from './fw-cfg-disk.js';

export type ShareMode = 'virtiofs' | '9p';

export interface UefiFirmware {
  code: string;
  /** The instance's own copy of the variables store. */
  vars: string;
  format: 'raw' | 'qcow2';
  requiresSmm: boolean;
}

/** Everything about one launch that is not in the definition: resolved by the supervisor, then fixed. */
export interface LaunchPlan {
  def: VmDefinition;
  arch: Arch;
  accel: 'kvm' | 'tcg';
  /** Direct kernel boot; without one the firmware boots from the ISO. */
  kernel?: string;
  initrd?: string;
  /** The system image's own kernel arguments (boot/cmdline). */
  imageCmdline?: string;
  qmpSocket: string;
  qgaSocket: string;
  eventsFile: string;
  pidFile: string;
  /** Host port forwarded to the guest's SSH port on 127.0.0.1 (first user-mode NIC only). */
  sshPort?: number;
  /** Per share tag: how it is exported, and for virtiofs the vhost-user socket. */
  shares: { tag: string; path: string; mode: ShareMode; socket?: string }[];
  volatileData?: string;
  firmware?: UefiFirmware;
  bridgeHelper?: string;
  /** fw_cfg items vmstub adds itself (after the user's). */
  extraFwCfg?: FwCfgEntry[];
  /** On machines without fw_cfg: the archive of its items (fwCfgItems) attached as a disk instead. */
  fwCfgDisk?: string;
  /** Where the stub's boot-export port writes, on machines whose stub hands over by the host. */
  bootExport?: string;
  /** The installed system's kernel, initramfs and whole command line, which the stub sent: booted instead. */
  directBoot?: { kernel: string; initrd?: string; cmdline: string };
  /** Read-only raw disks vmstub adds for one boot, by serial (create's cached root filesystem). */
  extraDisks?: { serial: string; path: string }[];
}

interface ArchTraits {
  binary: string;
  /** The Debian package that has the binary. */
  qemuPackage: string;
  machine: string;
  /**
   * The CPU under TCG: every feature the architecture's kernels use. aarch64's pointer authentication
   * with QEMU's own cheap algorithm instead of the architected one, which costs much emulated time;
   * and without LPA2: with 52-bit virtual addresses Debian 13's arm64 kernel oopses in kexec_load
   * (trans_pgd_create_copy), so the stub could not hand over.
   */
  tcgCpu: string;
  serialConsole: string;
  /**
   * Whether system_powerdown reaches the guest. aarch64's virt machine has a GPIO power button, but
   * Debian's cloud kernel has no driver for it (no gpio-keys); riscv64's virt has none. There the
   * guest agent is asked instead.
   */
  powerButton: boolean;
  /**
   * How the stub hands over to an installed system: kexec, or by the host (the stub sends the
   * installed kernel to the host, which starts QEMU again with it: src/boot/boot-export.ts), where
   * the stub has no kexec (Debian 13 has no kexec-tools for riscv64).
   */
  handoff: 'kexec' | 'host';
  /** Whether the machine has fw_cfg; without it the items go on a small disk (src/vm/fw-cfg-disk.ts). */
  fwCfg: boolean;
  /**
   * Whether QEMU reports the guest's power-off as a SHUTDOWN event. QEMU 7.2's riscv64 virt machine
   * exits at once instead (its test device, which OpenSBI powers off with, calls exit).
   */
  shutdownEvent: boolean;
  /**
   * The firmware an ISO or a boot disk boots through: BIOS unless --uefi (x86_64), UEFI alone
   * (aarch64's virt has no BIOS), or none vmstub can use (riscv64: a kernel is booted directly).
   */
  firmwareBoot: 'bios-or-uefi' | 'uefi' | 'none';
}

export const ARCH_TRAITS: Record<Arch, ArchTraits> = {
  x86_64: {
    binary: 'qemu-system-x86_64',
    qemuPackage: 'qemu-system-x86',
    machine: 'q35',
    tcgCpu: 'max',
    serialConsole: 'ttyS0,115200n8',
    powerButton: true,
    handoff: 'kexec',
    fwCfg: true,
    shutdownEvent: true,
    firmwareBoot: 'bios-or-uefi',
  },
  aarch64: {
    binary: 'qemu-system-aarch64',
    qemuPackage: 'qemu-system-arm',
    machine: 'virt',
    tcgCpu: 'max,pauth-impdef=on,lpa2=off',
    serialConsole: 'ttyAMA0,115200n8',
    powerButton: false,
    handoff: 'kexec',
    fwCfg: true,
    shutdownEvent: true,
    firmwareBoot: 'uefi',
  },
  riscv64: {
    binary: 'qemu-system-riscv64',
    qemuPackage: 'qemu-system-misc',
    machine: 'virt',
    tcgCpu: 'rv64',
    serialConsole: 'ttyS0,115200n8',
    powerButton: false,
    handoff: 'host',
    // QEMU 7.2's riscv64 virt machine has no fw_cfg device for -fw_cfg (later QEMUs have).
    fwCfg: false,
    shutdownEvent: false,
    firmwareBoot: 'none',
  },
};

/** QEMU's option syntax: a comma inside a value is written twice. */
export const qemuValue = (v: string): string => v.replace(/,/g, ',,');

export function kernelCommandLine(plan: LaunchPlan): string {
  const console = plan.def.hvc ? 'hvc0' : ARCH_TRAITS[plan.arch].serialConsole;
  return [`console=${console}`, ...(plan.imageCmdline ? [plan.imageCmdline] : []), ...plan.def.append].join(
    ' ',
  );
}

/** The data disk's drive id and serial (QMP's device name for block_resize; /dev/disk/by-id/virtio-data in the guest). */
export const DATA_DRIVE = 'data';

const netdevId = (index: number): string => `net${index}`;

/** The netdev that carries the SSH forward and every other: the first user-mode network. */
export function forwardingNetdev(def: Pick<VmDefinition, 'nets'>): string | undefined {
  const index = def.nets.findIndex((n) => n.kind === 'user');
  return index < 0 ? undefined : netdevId(index);
}

function diskArgs(id: string, disk: DiskSpec, readonly: boolean, bootIndex?: number): string[] {
  const drive = [
    `file=${qemuValue(disk.path)}`,
    'if=none',
    `id=${id}`,
    `format=${disk.format}`,
    readonly ? 'readonly=on' : 'discard=unmap,detect-zeroes=unmap',
  ];
  const device = `virtio-blk-pci,drive=${id},serial=${id}${bootIndex === undefined ? '' : `,bootindex=${bootIndex}`}`;
  return ['-drive', drive.join(','), '-device', device];
}

/** Everything passed through fw_cfg: the instance name, the user's items, vmstub's own for this boot. */
export function fwCfgItems(plan: LaunchPlan): FwCfgEntry[] {
  return [{ name: fwCfgName('name'), string: plan.def.name }, ...plan.def.fwCfg, ...(plan.extraFwCfg ?? [])];
}

/** The QEMU command line for a launch: a pure function of the plan, so every option can be tested by table. */
export function buildQemuArgv(plan: LaunchPlan): { binary: string; args: string[] } {
  const { def } = plan;
  const traits = ARCH_TRAITS[plan.arch];
  const usesVirtiofs = plan.shares.some((s) => s.mode === 'virtiofs');
  const machine = [traits.machine];
  if (usesVirtiofs) machine.push('memory-backend=mem');
  if (plan.firmware?.requiresSmm) machine.push('smm=on');

  // prettier-ignore
  const args: string[] = [
    '-name', qemuValue(def.name),
    '-nodefaults', '-no-user-config',
    '-display', 'none',
    '-machine', machine.join(','),
    '-accel', plan.accel,
    '-cpu', plan.accel === 'kvm' ? 'host' : traits.tcgCpu,
    '-m', `${def.memoryMiB}M`,
    '-smp', String(def.cpus),
  ];
  if (usesVirtiofs) {
    args.push('-object', `memory-backend-memfd,id=mem,size=${def.memoryMiB}M,share=on`);
  }
  if (plan.firmware) {
    const f = plan.firmware;
    if (f.requiresSmm) args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
    // prettier-ignore
    args.push(
      '-drive', `if=pflash,format=${f.format},unit=0,readonly=on,file=${qemuValue(f.code)}`,
      '-drive', `if=pflash,format=${f.format},unit=1,file=${qemuValue(f.vars)}`,
    );
  }
  if (plan.directBoot) {
    args.push('-kernel', plan.directBoot.kernel);
    if (plan.directBoot.initrd) args.push('-initrd', plan.directBoot.initrd);
    args.push('-append', plan.directBoot.cmdline);
  } else if (plan.kernel) {
    args.push('-kernel', plan.kernel);
    if (plan.initrd) args.push('-initrd', plan.initrd);
    args.push('-append', kernelCommandLine(plan));
  }

  args.push('-pidfile', plan.pidFile);
  args.push('-qmp', `unix:${qemuValue(plan.qmpSocket)},server=on,wait=off`);

  // The console is the supervisor's: QEMU's stdin and stdout are its pipes.
  args.push('-chardev', 'stdio,id=console,signal=off');
  if (def.hvc) {
    args.push(
      '-device',
      'virtio-serial-pci,id=hvcbus',
      '-device',
      'virtconsole,chardev=console,bus=hvcbus.0',
    );
  } else {
    args.push('-serial', 'chardev:console');
  }

  if (def.system) args.push(...diskArgs('system', { path: def.system, format: 'raw' }, true));
  if (def.iso) {
    // A CD drive on virtio-scsi: SeaBIOS and OVMF boot from it, and VM kernels have its driver.
    // prettier-ignore
    args.push(
      '-device', 'virtio-scsi-pci,id=scsi0',
      '-drive', `file=${qemuValue(def.iso)},if=none,id=cd,format=raw,media=cdrom,readonly=on`,
      '-device', 'scsi-cd,bus=scsi0.0,drive=cd,bootindex=0',
    );
  }
  if (def.bootDisk) args.push(...diskArgs('boot', def.bootDisk, false, 0));
  if (def.cloudInitSeed) args.push(...diskArgs('cidata', { path: def.cloudInitSeed, format: 'raw' }, true));
  if (def.data) args.push(...diskArgs(DATA_DRIVE, def.data, false));
  else if (plan.volatileData)
    args.push(...diskArgs(DATA_DRIVE, { path: plan.volatileData, format: 'raw' }, false));
  for (const d of plan.extraDisks ?? [])
    args.push(...diskArgs(d.serial, { path: d.path, format: 'raw' }, true));

  plan.shares.forEach((share, i) => {
    if (share.mode === 'virtiofs') {
      // prettier-ignore
      args.push(
        '-chardev', `socket,id=fs${i},path=${qemuValue(share.socket!)}`,
        '-device', `vhost-user-fs-pci,chardev=fs${i},tag=${share.tag},queue-size=1024`,
      );
    } else {
      args.push(
        '-virtfs',
        `local,path=${qemuValue(share.path)},mount_tag=${share.tag},security_model=mapped-xattr,id=fs${i}`,
      );
    }
  });

  const forwarding = forwardingNetdev(def);
  def.nets.forEach((net, i) => {
    let netdev: string;
    if (net.kind === 'user') {
      const parts = [`user,id=${netdevId(i)}`];
      if (netdevId(i) === forwarding) {
        parts.push(`hostname=${def.name}`);
        if (plan.sshPort) parts.push(`hostfwd=tcp:127.0.0.1:${plan.sshPort}-:22`);
        for (const f of def.hostfwds) parts.push(`hostfwd=${formatHostFwd(f)}`);
      }
      netdev = parts.join(',');
    } else if (net.kind === 'bridge') {
      netdev =
        `bridge,id=${netdevId(i)},br=${net.bridge}` +
        (plan.bridgeHelper ? `,helper=${qemuValue(plan.bridgeHelper)}` : '');
    } else {
      netdev = `tap,id=${netdevId(i)},ifname=${net.ifname},script=no,downscript=no`;
    }
    args.push(
      '-netdev',
      netdev,
      '-device',
      `virtio-net-pci,netdev=${netdevId(i)},mac=${macFor(def.name, i)},romfile=`,
    );
  });

  // prettier-ignore
  args.push(
    '-device', 'virtio-serial-pci,id=vserial',
    '-chardev', `socket,id=qga,path=${qemuValue(plan.qgaSocket)},server=on,wait=off`,
    '-device', 'virtserialport,bus=vserial.0,chardev=qga,name=org.qemu.guest_agent.0',
    '-chardev', `file,id=events,path=${qemuValue(plan.eventsFile)},append=on`,
    '-device', `virtserialport,bus=vserial.0,chardev=events,name=${EVENTS_PORT}`,
  );
  if (plan.bootExport && !plan.directBoot) {
    // prettier-ignore
    args.push(
      '-chardev', `file,id=bootexport,path=${qemuValue(plan.bootExport)}`,
      '-device', `virtserialport,bus=vserial.0,chardev=bootexport,name=${BOOT_EXPORT_PORT}`,
    );
  }
  args.push('-device', 'virtio-rng-pci');

  if (!traits.fwCfg) {
    if (plan.fwCfgDisk)
      args.push(...diskArgs(FW_CFG_DISK_SERIAL, { path: plan.fwCfgDisk, format: 'raw' }, true));
    return { binary: traits.binary, args };
  }
  for (const item of fwCfgItems(plan)) {
    const value = 'file' in item ? `file=${qemuValue(item.file)}` : `string=${qemuValue(item.string)}`;
    args.push('-fw_cfg', `name=${item.name},${value}`);
  }
  return { binary: traits.binary, args };
}
