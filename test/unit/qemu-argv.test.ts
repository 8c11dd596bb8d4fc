import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildQemuArgv, kernelCommandLine, type LaunchPlan } from '../../src/vm/qemu-argv.js';
import { launchPlan } from '../helpers/launch-plan.js';

/** The values that follow each occurrence of a flag. */
function valuesOf(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag && i + 1 < args.length ? [args[i + 1]!] : []));
}

interface Case {
  name: string;
  plan: LaunchPlan;
  binary?: string;
  /** [flag, value] pairs that must appear. */
  has: [string, string][];
  /** [flag, value-substring] pairs that must not appear. */
  lacks?: [string, string][];
  cmdline?: string;
}

const cases: Case[] = [
  {
    name: 'defaults: q35, TCG with -cpu max, read-only system disk, user net with SSH forward, serial console',
    plan: launchPlan(),
    binary: 'qemu-system-x86_64',
    has: [
      ['-machine', 'q35'],
      ['-accel', 'tcg'],
      ['-cpu', 'max'],
      ['-m', '2048M'],
      ['-smp', '2'],
      ['-kernel', '/cache/kernel'],
      ['-initrd', '/cache/initramfs'],
      ['-drive', 'file=/images/stub.squashfs,if=none,id=system,format=raw,readonly=on'],
      ['-device', 'virtio-blk-pci,drive=system,serial=system'],
      ['-netdev', 'user,id=net0,hostname=web1,hostfwd=tcp:127.0.0.1:40022-:22'],
      ['-serial', 'chardev:console'],
      ['-chardev', 'stdio,id=console,signal=off'],
      ['-qmp', 'unix:/run/web1/qmp.sock,server=on,wait=off'],
      ['-pidfile', '/run/web1/qemu.pid'],
      ['-device', 'virtserialport,bus=vserial.0,chardev=qga,name=org.qemu.guest_agent.0'],
      ['-chardev', 'file,id=events,path=/run/web1/events.ndjson,append=on'],
      ['-fw_cfg', 'name=opt/org.vmstub/name,string=web1'],
      ['-display', 'none'],
    ],
    lacks: [
      ['-drive', 'if=pflash'],
      ['-object', 'memory-backend-memfd'],
      ['-device', 'virtconsole'],
    ],
    cmdline: 'console=ttyS0,115200n8',
  },
  {
    name: 'KVM uses the host CPU',
    plan: launchPlan({ accel: 'kvm' }),
    has: [
      ['-accel', 'kvm'],
      ['-cpu', 'host'],
    ],
    lacks: [['-cpu', 'max']],
  },
  {
    name: '--hvc puts the console on a virtio console and hvc0',
    plan: launchPlan({}, { hvc: true }),
    has: [
      ['-device', 'virtconsole,chardev=console,bus=hvcbus.0'],
      ['-device', 'virtio-serial-pci,id=hvcbus'],
    ],
    lacks: [['-serial', 'chardev:console']],
    cmdline: 'console=hvc0',
  },
  {
    name: "--append comes after vmstub's own arguments",
    plan: launchPlan({}, { append: ['quiet', 'vmstub.nokexec'] }),
    has: [],
    cmdline: 'console=ttyS0,115200n8 quiet vmstub.nokexec',
  },
  {
    name: "the image's boot/cmdline sits between the console and the user's --append",
    plan: launchPlan({ imageCmdline: 'quiet lsm=yama' }, { append: ['vmstub.nokexec'] }),
    has: [],
    cmdline: 'console=ttyS0,115200n8 quiet lsm=yama vmstub.nokexec',
  },
  {
    name: 'raw data disk with serial data and discard',
    plan: launchPlan({}, { data: { path: '/disks/d.img', format: 'raw' } }),
    has: [
      ['-drive', 'file=/disks/d.img,if=none,id=data,format=raw,discard=unmap,detect-zeroes=unmap'],
      ['-device', 'virtio-blk-pci,drive=data,serial=data'],
    ],
  },
  {
    name: 'qcow2 data disk keeps its format',
    plan: launchPlan({}, { data: { path: '/disks/d.qcow2', format: 'qcow2' } }),
    has: [['-drive', 'file=/disks/d.qcow2,if=none,id=data,format=qcow2,discard=unmap,detect-zeroes=unmap']],
  },
  {
    name: 'volatile data is the data disk too',
    plan: launchPlan({ volatileData: '/run/web1/volatile-data.img' }, { volatileDataBytes: 1 << 30 }),
    has: [
      [
        '-drive',
        'file=/run/web1/volatile-data.img,if=none,id=data,format=raw,discard=unmap,detect-zeroes=unmap',
      ],
    ],
  },
  {
    name: 'commas in paths and names are doubled',
    plan: launchPlan(
      {},
      { name: 'a', system: '/img/a,b.squashfs', fwCfg: [{ name: 'opt/x', string: 'k=v,w' }] },
    ),
    has: [
      ['-drive', 'file=/img/a,,b.squashfs,if=none,id=system,format=raw,readonly=on'],
      ['-fw_cfg', 'name=opt/x,string=k=v,,w'],
    ],
  },
  {
    name: 'fw_cfg files and strings, user items before vmstub extras',
    plan: launchPlan(
      { extraFwCfg: [{ name: 'opt/org.vmstub/install-spec', file: '/run/spec.json' }] },
      {
        fwCfg: [
          { name: 'opt/app.ini', file: '/etc/app.ini' },
          { name: 'opt/mode', string: 'test' },
        ],
      },
    ),
    has: [
      ['-fw_cfg', 'name=opt/app.ini,file=/etc/app.ini'],
      ['-fw_cfg', 'name=opt/mode,string=test'],
      ['-fw_cfg', 'name=opt/org.vmstub/install-spec,file=/run/spec.json'],
    ],
  },
  {
    name: "a boot's extra disk (create's cached root filesystem): read-only raw, found by its serial",
    plan: launchPlan({ extraDisks: [{ serial: 'vmstub-root', path: '/cache/roots/ab,c.tar' }] }),
    has: [
      ['-drive', 'file=/cache/roots/ab,,c.tar,if=none,id=vmstub-root,format=raw,readonly=on'],
      ['-device', 'virtio-blk-pci,drive=vmstub-root,serial=vmstub-root'],
    ],
  },
  {
    name: 'virtiofs share: vhost-user-fs, shared memfd memory backend',
    plan: launchPlan({
      shares: [{ tag: 'fs', path: '/srv', mode: 'virtiofs', socket: '/run/web1/virtiofs-0.sock' }],
    }),
    has: [
      ['-machine', 'q35,memory-backend=mem'],
      ['-object', 'memory-backend-memfd,id=mem,size=2048M,share=on'],
      ['-chardev', 'socket,id=fs0,path=/run/web1/virtiofs-0.sock'],
      ['-device', 'vhost-user-fs-pci,chardev=fs0,tag=fs,queue-size=1024'],
    ],
  },
  {
    name: '9p share',
    plan: launchPlan({ shares: [{ tag: 'data', path: '/srv/x', mode: '9p' }] }),
    has: [['-virtfs', 'local,path=/srv/x,mount_tag=data,security_model=mapped-xattr,id=fs0']],
    lacks: [['-object', 'memory-backend-memfd']],
  },
  {
    name: 'user hostfwds follow the SSH forward on the first user NIC',
    plan: launchPlan(
      {},
      {
        hostfwds: [
          { protocol: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080, guestPort: 80 },
          { protocol: 'udp', hostAddr: '0.0.0.0', hostPort: 53, guestPort: 53 },
        ],
      },
    ),
    has: [
      [
        '-netdev',
        'user,id=net0,hostname=web1,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:0.0.0.0:53-:53',
      ],
    ],
  },
  {
    name: 'bridge and tap NICs, each with its own stable MAC and no option ROM',
    plan: launchPlan(
      { bridgeHelper: '/usr/lib/qemu/qemu-bridge-helper', sshPort: undefined },
      {
        nets: [
          { kind: 'bridge', bridge: 'br0' },
          { kind: 'tap', ifname: 'tap5' },
        ],
      },
    ),
    has: [
      ['-netdev', 'bridge,id=net0,br=br0,helper=/usr/lib/qemu/qemu-bridge-helper'],
      ['-netdev', 'tap,id=net1,ifname=tap5,script=no,downscript=no'],
    ],
    lacks: [['-netdev', 'user']],
  },
  {
    name: "UEFI: code read-only and the instance's own vars as pflash",
    plan: launchPlan({
      firmware: {
        code: '/usr/share/OVMF/OVMF_CODE_4M.fd',
        vars: '/run/web1/efivars.fd',
        format: 'raw',
        requiresSmm: false,
      },
    }),
    has: [
      ['-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd'],
      ['-drive', 'if=pflash,format=raw,unit=1,file=/run/web1/efivars.fd'],
    ],
    lacks: [
      ['-machine', 'smm=on'],
      ['-global', 'cfi.pflash01'],
    ],
  },
  {
    name: 'UEFI firmware that requires SMM gets SMM and secure pflash',
    plan: launchPlan({
      firmware: { code: '/fw/code.fd', vars: '/run/vars.fd', format: 'raw', requiresSmm: true },
    }),
    has: [
      ['-machine', 'q35,smm=on'],
      ['-global', 'driver=cfi.pflash01,property=secure,value=on'],
    ],
  },
  {
    name: 'kernel without a system image or initrd',
    plan: launchPlan({ initrd: undefined }, { system: undefined, kernel: '/boot/vmlinuz' }),
    has: [['-kernel', '/cache/kernel']],
    lacks: [
      ['-initrd', ''],
      ['-device', 'drive=system'],
    ],
  },
  {
    name: 'aarch64 under TCG: the virt machine, a CPU with cheap pointer authentication, ttyAMA0',
    plan: launchPlan({ arch: 'aarch64' }),
    binary: 'qemu-system-aarch64',
    has: [
      ['-machine', 'virt'],
      ['-cpu', 'max,pauth-impdef=on,lpa2=off'],
      ['-device', 'virtio-blk-pci,drive=system,serial=system'],
    ],
    cmdline: 'console=ttyAMA0,115200n8',
  },
  {
    name: 'aarch64 under KVM on an aarch64 host: the host CPU',
    plan: launchPlan({ arch: 'aarch64', accel: 'kvm' }),
    has: [['-cpu', 'host']],
  },
  {
    name: 'aarch64 with UEFI (AAVMF): its flash pair, no SMM',
    plan: launchPlan(
      {
        arch: 'aarch64',
        kernel: undefined,
        initrd: undefined,
        firmware: { code: '/fw/AAVMF_CODE.fd', vars: '/vm/efivars.fd', format: 'raw', requiresSmm: false },
      },
      { system: undefined, iso: '/images/live.iso' },
    ),
    has: [
      ['-machine', 'virt'],
      ['-drive', 'if=pflash,format=raw,unit=0,readonly=on,file=/fw/AAVMF_CODE.fd'],
      ['-drive', 'if=pflash,format=raw,unit=1,file=/vm/efivars.fd'],
    ],
    lacks: [
      ['-global', 'cfi.pflash01'],
      ['-kernel', ''],
    ],
  },
  {
    name: 'aarch64 with hvc: the virtio console instead of ttyAMA0',
    plan: launchPlan({ arch: 'aarch64' }, { hvc: true }),
    has: [['-device', 'virtconsole,chardev=console,bus=hvcbus.0']],
    lacks: [['-serial', '']],
    cmdline: 'console=hvc0',
  },
  {
    name: 'riscv64 under TCG: the virt machine, the generic rv64 CPU, ttyS0',
    plan: launchPlan({ arch: 'riscv64' }),
    binary: 'qemu-system-riscv64',
    has: [
      ['-machine', 'virt'],
      ['-cpu', 'rv64'],
      ['-device', 'virtio-blk-pci,drive=system,serial=system'],
    ],
    lacks: [['-bios', '']],
    cmdline: 'console=ttyS0,115200n8',
  },
  {
    name: 'riscv64 stub: a boot-export port for the installed kernel it cannot kexec',
    plan: launchPlan({ arch: 'riscv64', bootExport: '/run/web1/boot-export' }),
    has: [
      ['-chardev', 'file,id=bootexport,path=/run/web1/boot-export'],
      ['-device', 'virtserialport,bus=vserial.0,chardev=bootexport,name=org.vmstub.boot'],
    ],
  },
  {
    name: "a direct boot: the installed system's kernel, initramfs and whole command line, no export port",
    plan: launchPlan({
      arch: 'riscv64',
      bootExport: '/run/web1/boot-export',
      directBoot: {
        kernel: '/vm/direct-boot/kernel',
        initrd: '/vm/direct-boot/initrd',
        cmdline: 'root=UUID=1 ro console=ttyS0',
      },
    }),
    has: [
      ['-kernel', '/vm/direct-boot/kernel'],
      ['-initrd', '/vm/direct-boot/initrd'],
      ['-append', 'root=UUID=1 ro console=ttyS0'],
    ],
    lacks: [
      ['-kernel', '/cache/kernel'],
      ['-chardev', 'bootexport'],
    ],
  },
  {
    name: 'riscv64 has no fw_cfg: its items go on a read-only disk, and no -fw_cfg at all',
    plan: launchPlan({ arch: 'riscv64', fwCfgDisk: '/run/web1/fw-cfg.tar' }),
    has: [
      ['-drive', 'file=/run/web1/fw-cfg.tar,if=none,id=vmstub-fwcfg,format=raw,readonly=on'],
      ['-device', 'virtio-blk-pci,drive=vmstub-fwcfg,serial=vmstub-fwcfg'],
    ],
    lacks: [['-fw_cfg', '']],
  },
  {
    name: 'an ISO: a CD drive on virtio-scsi that the firmware boots first, and no direct kernel boot',
    plan: launchPlan(
      { kernel: undefined, initrd: undefined },
      { system: undefined, iso: '/images/live,1.iso' },
    ),
    has: [
      ['-device', 'virtio-scsi-pci,id=scsi0'],
      ['-drive', 'file=/images/live,,1.iso,if=none,id=cd,format=raw,media=cdrom,readonly=on'],
      ['-device', 'scsi-cd,bus=scsi0.0,drive=cd,bootindex=0'],
    ],
    lacks: [
      ['-kernel', ''],
      ['-append', ''],
      ['-drive', 'id=system'],
    ],
  },
  {
    name: 'a boot disk: a writable virtio disk the firmware boots first, and no direct kernel boot',
    plan: launchPlan(
      { kernel: undefined, initrd: undefined },
      { system: undefined, bootDisk: { path: '/images/usb.img', format: 'raw' } },
    ),
    has: [
      ['-drive', 'file=/images/usb.img,if=none,id=boot,format=raw,discard=unmap,detect-zeroes=unmap'],
      ['-device', 'virtio-blk-pci,drive=boot,serial=boot,bootindex=0'],
    ],
    lacks: [
      ['-kernel', ''],
      ['-drive', 'id=system'],
    ],
  },
];

for (const c of cases) {
  test(`argv: ${c.name}`, () => {
    const { binary, args } = buildQemuArgv(c.plan);
    if (c.binary) assert.equal(binary, c.binary);
    for (const [flag, value] of c.has) {
      assert.ok(
        valuesOf(args, flag).includes(value),
        `expected ${flag} ${value}\n  got ${flag}: ${valuesOf(args, flag).join(' | ')}`,
      );
    }
    for (const [flag, part] of c.lacks ?? []) {
      assert.ok(
        !valuesOf(args, flag).some((v) => v.includes(part)),
        `did not expect ${flag} containing '${part}'`,
      );
    }
    if (c.cmdline) {
      assert.equal(kernelCommandLine(c.plan), c.cmdline);
      assert.deepEqual(valuesOf(args, '-append'), [c.cmdline]);
    }
  });
}

test('argv: every data disk and NIC is listed once, in order', () => {
  const { args } = buildQemuArgv(
    launchPlan({}, { data: { path: '/d', format: 'raw' }, nets: [{ kind: 'user' }, { kind: 'user' }] }),
  );
  assert.deepEqual(
    valuesOf(args, '-device').filter((d) => d.startsWith('virtio-blk-pci')),
    ['virtio-blk-pci,drive=system,serial=system', 'virtio-blk-pci,drive=data,serial=data'],
  );
  const netdevs = valuesOf(args, '-netdev');
  assert.equal(netdevs.length, 2);
  assert.ok(netdevs[0]!.includes('hostfwd=tcp:127.0.0.1:40022-:22'));
  assert.ok(!netdevs[1]!.includes('hostfwd'), 'forwards go on the first user NIC only');
});
