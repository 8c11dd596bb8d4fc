import { formatHostFwd, macFor } from './network.js';
import type { Arch } from '../util/arch.js';
import type { DiskSpec, VmDefinition } from './definition.js';
import { EVENTS_PORT, fwCfgName } from '../events/protocol.js';

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
  extraFwCfg?: { name: string; file: string }[];
  /** Read-only raw disks vmstub adds for one boot, by serial (create's cached root filesystem). */
  extraDisks?: { serial: string; path: string }[];
}

interface ArchTraits {
  binary: string;
  machine: string;
  serialConsole: string;
}

export const ARCH_TRAITS: Record<Arch, ArchTraits> = {
  x86_64: { binary: 'qemu-system-x86_64', machine: 'q35', serialConsole: 'ttyS0,115200n8' },
  aarch64: { binary: 'qemu-system-aarch64', machine: 'virt', serialConsole: 'ttyAMA0,115200n8' },
  riscv64: { binary: 'qemu-system-riscv64', machine: 'virt', serialConsole: 'ttyS0,115200n8' },
};

/** QEMU's option syntax: a comma inside a value is written twice. */
export const qemuValue = (v: string): string => v.replace(/,/g, ',,');

export function kernelCommandLine(plan: LaunchPlan): string {
  const console = plan.def.hvc ? 'hvc0' : ARCH_TRAITS[plan.arch].serialConsole;
  return [`console=${console}`, ...(plan.imageCmdline ? [plan.imageCmdline] : []), ...plan.def.append].join(
    ' ',
  );
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
    '-cpu', plan.accel === 'kvm' ? 'host' : 'max',
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
  if (plan.kernel) {
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
  if (def.data) args.push(...diskArgs('data', def.data, false));
  else if (plan.volatileData)
    args.push(...diskArgs('data', { path: plan.volatileData, format: 'raw' }, false));
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

  let userNetSeen = false;
  def.nets.forEach((net, i) => {
    let netdev: string;
    if (net.kind === 'user') {
      const parts = [`user,id=net${i}`];
      if (!userNetSeen) {
        parts.push(`hostname=${def.name}`);
        if (plan.sshPort) parts.push(`hostfwd=tcp:127.0.0.1:${plan.sshPort}-:22`);
        for (const f of def.hostfwds) parts.push(`hostfwd=${formatHostFwd(f)}`);
        userNetSeen = true;
      }
      netdev = parts.join(',');
    } else if (net.kind === 'bridge') {
      netdev =
        `bridge,id=net${i},br=${net.bridge}` +
        (plan.bridgeHelper ? `,helper=${qemuValue(plan.bridgeHelper)}` : '');
    } else {
      netdev = `tap,id=net${i},ifname=${net.ifname},script=no,downscript=no`;
    }
    args.push(
      '-netdev',
      netdev,
      '-device',
      `virtio-net-pci,netdev=net${i},mac=${macFor(def.name, i)},romfile=`,
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
  args.push('-device', 'virtio-rng-pci');

  args.push('-fw_cfg', `name=${fwCfgName('name')},string=${qemuValue(def.name)}`);
  for (const item of [...def.fwCfg, ...(plan.extraFwCfg ?? [])]) {
    const value = 'file' in item ? `file=${qemuValue(item.file)}` : `string=${qemuValue(item.string)}`;
    args.push('-fw_cfg', `name=${item.name},${value}`);
  }
  return { binary: traits.binary, args };
}
