/**
 * The libvirt domain of a launch, by table: what each part of a plan becomes in the XML, and what is
 * left out because libvirt does it (the monitor, the pid file) or cannot say it (user-mode port
 * forwards). libvirt's own reading of these domains is checked in test/integration/libvirt-domain.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDomainXml, xmlEscape } from '../../src/vm/libvirt-domain.js';
import type { LaunchPlan } from '../../src/vm/qemu-argv.js';
import { launchPlan } from '../helpers/launch-plan.js';

const xml = (p: LaunchPlan) => buildDomainXml(p, { consoleLog: '/run/web1/console.log' });

interface Case {
  name: string;
  plan: LaunchPlan;
  has: (string | RegExp)[];
  lacks?: (string | RegExp)[];
}

const cases: Case[] = [
  {
    name: 'defaults: TCG (type qemu, the maximum CPU), q35, direct kernel boot, the system disk read-only, a pty console logged',
    plan: launchPlan(),
    has: [
      "<domain type='qemu'>",
      '<name>web1</name>',
      "<memory unit='MiB'>2048</memory>",
      '<vcpu>2</vcpu>',
      "<type arch='x86_64' machine='q35'>hvm</type>",
      '<kernel>/cache/kernel</kernel>',
      '<initrd>/cache/initramfs</initrd>',
      '<cmdline>console=ttyS0,115200n8</cmdline>',
      "<cpu mode='maximum'/>",
      '<acpi/>',
      /<disk type='file' device='disk'>\s*<driver name='qemu' type='raw'\/>\s*<source file='\/images\/stub.squashfs'\/>\s*<target dev='vda' bus='virtio'\/>\s*<serial>system<\/serial>\s*<readonly\/>/,
      /<serial type='pty'>\s*<log file='\/run\/web1\/console.log' append='on'\/>/,
      /<channel type='unix'>\s*<source mode='bind' path='\/run\/web1\/qga.sock'\/>\s*<target type='virtio' name='org.qemu.guest_agent.0'\/>/,
      /<channel type='file'>\s*<source path='\/run\/web1\/events.ndjson' append='on'\/>\s*<target type='virtio' name='org.vmstub.events'\/>/,
      "<entry name='opt/org.vmstub/name'>web1</entry>",
      /<interface type='user'>\s*<mac address='52:54:00:[0-9a-f:]{8}'\/>\s*<model type='virtio'\/>/,
      "<rng model='virtio'>",
      '<on_reboot>restart</on_reboot>',
      /<metadata>\s*<vmstub:instance xmlns:vmstub='urn:vmstub:instance:1'>\s*<vmstub:name>web1<\/vmstub:name>\s*<vmstub:created>2026-01-01T00:00:00.000Z<\/vmstub:created>/,
    ],
    lacks: ['qmp.sock', 'qemu.pid', '40022', 'hostfwd', '<emulator>'],
  },
  {
    name: 'KVM: type kvm and the host CPU passed through',
    plan: launchPlan({ accel: 'kvm' }),
    has: ["<domain type='kvm'>", "<cpu mode='host-passthrough'/>"],
    lacks: ["mode='maximum'"],
  },
  {
    name: 'a data disk (qcow2, discard passed down), fw_cfg items from files and strings',
    plan: launchPlan(
      { extraFwCfg: [{ name: 'opt/org.vmstub/install-spec', file: '/run/web1/spec.json' }] },
      { data: { path: '/vm/disk.qcow2', format: 'qcow2' }, fwCfg: [{ name: 'opt/x', string: 'one two' }] },
    ),
    has: [
      /<driver name='qemu' type='qcow2' discard='unmap' detect_zeroes='unmap'\/>\s*<source file='\/vm\/disk.qcow2'\/>\s*<target dev='vdb' bus='virtio'\/>\s*<serial>data<\/serial>/,
      "<entry name='opt/org.vmstub/install-spec' file='/run/web1/spec.json'/>",
      "<entry name='opt/x'>one two</entry>",
    ],
  },
  {
    name: 'an ISO: a virtio-scsi CD drive booted first, and UEFI firmware with SMM',
    plan: launchPlan(
      {
        kernel: undefined,
        initrd: undefined,
        firmware: { code: '/fw/code.fd', vars: '/vm/vars.fd', format: 'raw', requiresSmm: true },
      },
      { system: undefined, iso: '/isos/live.iso' },
    ),
    has: [
      "<controller type='scsi' index='0' model='virtio-scsi'/>",
      /<disk type='file' device='cdrom'>[\s\S]*<source file='\/isos\/live.iso'\/>\s*<target dev='sda' bus='scsi'\/>\s*<readonly\/>\s*<boot order='1'\/>/,
      "<loader readonly='yes' type='pflash' secure='yes'>/fw/code.fd</loader>",
      '<nvram>/vm/vars.fd</nvram>',
      "<smm state='on'/>",
    ],
    lacks: ['<kernel>', '<cmdline>'],
  },
  {
    name: 'the console on hvc0, a virtiofs share (shared memory), a bridge and a tap',
    plan: launchPlan(
      { shares: [{ tag: 'fs', path: '/srv/share', mode: 'virtiofs', socket: '/run/web1/fs.sock' }] },
      {
        hvc: true,
        nets: [
          { kind: 'bridge', bridge: 'br0' },
          { kind: 'tap', ifname: 'tap7' },
        ],
      },
    ),
    has: [
      /<console type='pty'>\s*<log [^>]*\/>\s*<target type='virtio' port='0'\/>/,
      '<cmdline>console=hvc0</cmdline>',
      /<memoryBacking>\s*<source type='memfd'\/>\s*<access mode='shared'\/>/,
      /<filesystem type='mount' accessmode='passthrough'>\s*<driver type='virtiofs'\/>\s*<source dir='\/srv\/share'\/>\s*<target dir='fs'\/>/,
      /<interface type='bridge'>\s*<source bridge='br0'\/>/,
      /<interface type='ethernet'>\s*<target dev='tap7' managed='no'\/>/,
    ],
    lacks: ["<serial type='pty'>", "<interface type='user'>"],
  },
  {
    name: 'a 9p share is mapped, as QEMU exports it',
    plan: launchPlan({ shares: [{ tag: 'fs', path: '/srv/share', mode: '9p' }] }),
    has: [/<filesystem type='mount' accessmode='mapped'>\s*<source dir='\/srv\/share'\/>/],
    lacks: ['memoryBacking'],
  },
  {
    name: "the host's handoff: the installed system's kernel and whole command line instead of the stub's",
    plan: launchPlan({ directBoot: { kernel: '/vm/boot/vmlinuz', cmdline: "root=UUID=1 quiet x='<y>'" } }),
    has: ['<kernel>/vm/boot/vmlinuz</kernel>', "<cmdline>root=UUID=1 quiet x='&lt;y&gt;'</cmdline>"],
    lacks: ['<initrd>', '/cache/kernel'],
  },
  {
    name: 'riscv64: no fw_cfg device, its items on a disk; the boot-export port of the handoff by the host',
    plan: launchPlan({
      arch: 'riscv64',
      fwCfgDisk: '/run/web1/fwcfg.img',
      bootExport: '/run/web1/boot-export',
    }),
    has: [
      "<type arch='riscv64' machine='virt'>hvm</type>",
      /<source file='\/run\/web1\/fwcfg.img'\/>\s*<target dev='vdb' bus='virtio'\/>\s*<serial>vmstub-fwcfg<\/serial>\s*<readonly\/>/,
      /<source path='\/run\/web1\/boot-export' append='on'\/>\s*<target type='virtio' name='org.vmstub.boot'\/>/,
    ],
    lacks: ['<sysinfo', '<apic/>'],
  },
];

for (const c of cases)
  test(`domain XML: ${c.name}`, () => {
    const out = xml(c.plan);
    for (const want of c.has)
      if (typeof want === 'string') assert.ok(out.includes(want), `missing ${want}\n${out}`);
      else assert.match(out, want);
    for (const unwanted of c.lacks ?? [])
      if (typeof unwanted === 'string') assert.ok(!out.includes(unwanted), `has ${unwanted}\n${out}`);
      else assert.doesNotMatch(out, unwanted);
  });

test('a fw_cfg string with a comma or & < > \' " is refused: libvirt would pass it to QEMU as its XML spells it', () => {
  for (const string of ['a,b', 'a&b', 'a<b', 'a>b', "a'b", 'a"b'])
    assert.throws(
      () => xml(launchPlan({}, { fwCfg: [{ name: 'opt/x', string }] })),
      /^VmstubError: fw_cfg item opt\/x: libvirt 9\.0 passes a string to QEMU as its XML spells it \(a comma ends it; & < > ' " arrive escaped\); give it as a file$/,
    );
});

test('XML escaping: every character that would end a value or an element', () => {
  assert.equal(xmlEscape(`a<b>&"c"'d'`), 'a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;');
  const weird = buildDomainXml(launchPlan({}, { system: "/images/it's & <x>.squashfs" }), {
    consoleLog: '/l',
  });
  assert.ok(weird.includes("file='/images/it&apos;s &amp; &lt;x&gt;.squashfs'"), weird);
});
