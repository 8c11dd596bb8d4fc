/**
 * The domain XML vmstub makes of a launch (src/vm/libvirt-domain.ts), read by libvirt itself: libvirt
 * 9.0's `virsh domxml-to-native qemu-argv` turns it into the QEMU command line it would run, and that
 * command line must boot the same machine as vmstub's own (buildQemuArgv) for the same plan: the same
 * accelerator, memory and CPUs, kernel, initramfs and command line, fw_cfg items, disks (file, serial,
 * read-only, format), virtio-serial ports (name and where each goes), NICs (MAC), shares and the RNG.
 * domxml-to-native defines nothing and runs no QEMU; then one domain is defined, booted under TCG and
 * shut down through libvirt, with the fixture guest, and undefined.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LibvirtClient } from '../../src/vm/libvirt-client.js';
import { buildDomainXml } from '../../src/vm/libvirt-domain.js';
import { buildQemuArgv, type LaunchPlan } from '../../src/vm/qemu-argv.js';
import { fixtureSystemImage, isRoot } from '../helpers/fixture.js';
import { waitFor } from '../helpers/cli.js';
import { shellWords, SYSTEM_URI, withLibvirtd } from '../helpers/libvirt.js';
import { launchPlan } from '../helpers/launch-plan.js';

interface Facts {
  accel: string;
  memoryMiB: number;
  cpus: number;
  kernel?: string;
  initrd?: string;
  append?: string;
  fwCfg: string[];
  disks: string[];
  ports: string[];
  macs: string[];
  shares: string[];
  rng: boolean;
}

const valuesOf = (args: string[], flag: string) =>
  args.flatMap((a, i) => (a === flag && i + 1 < args.length ? [args[i + 1]!] : []));
const option = (value: string, key: string) =>
  value
    .split(',')
    .find((p) => p.startsWith(`${key}=`))
    ?.slice(key.length + 1);
const json = (v: string): Record<string, unknown> | undefined =>
  v.startsWith('{') ? (JSON.parse(v) as Record<string, unknown>) : undefined;

/** What a QEMU command line (vmstub's or libvirt's) makes of the machine, in one form for both. */
function facts(args: string[]): Facts {
  const devices = valuesOf(args, '-device');
  const jsonDevices = devices.map(json).filter((d) => d !== undefined);
  const plainDevices = devices.filter((d) => !d.startsWith('{'));
  const chardevs = valuesOf(args, '-chardev');
  const chardevPath = (id: string) => {
    const c = chardevs.find((v) => option(v, 'id') === id);
    return c ? `${c.split(',')[0]} ${option(c, 'path')}` : `no chardev ${id}`;
  };

  // vmstub's: -drive file=..,id=X,format=..[,readonly=on] with -device virtio-blk-pci,drive=X,serial=S
  const drives = valuesOf(args, '-drive').filter((d) => !d.startsWith('if=pflash'));
  const disks = drives.map((d) => {
    const id = option(d, 'id')!;
    const device = plainDevices.find((v) => option(v, 'drive') === id) ?? '';
    const kind = device.split(',')[0] === 'scsi-cd' ? 'cd' : 'disk';
    const ro = option(d, 'readonly') === 'on' ? 'ro' : 'rw';
    return `${kind} ${option(d, 'file')} ${option(d, 'format')} ${ro} serial=${option(device, 'serial') ?? '-'}`;
  });
  // libvirt's: -blockdev storage and format nodes, -device {drive: format node}
  const blockdevs = valuesOf(args, '-blockdev').map((v) => json(v)!);
  for (const dev of jsonDevices.filter((d) => typeof d.drive === 'string')) {
    const format = blockdevs.find((b) => b['node-name'] === dev.drive)!;
    const storage = blockdevs.find((b) => b['node-name'] === format.file)!;
    const kind = dev.driver === 'scsi-cd' ? 'cd' : 'disk';
    const ro = format['read-only'] === true ? 'ro' : 'rw';
    disks.push(
      `${kind} ${String(storage.filename)} ${String(format.driver)} ${ro} serial=${String(dev.serial ?? '-')}`,
    );
  }

  const ports = [
    ...plainDevices
      .filter((d) => d.startsWith('virtserialport,'))
      .map((d) => `${option(d, 'name')} ${chardevPath(option(d, 'chardev')!)}`),
    ...jsonDevices
      .filter((d) => d.driver === 'virtserialport')
      .map((d) => `${String(d.name)} ${chardevPath(String(d.chardev))}`),
  ];
  const macs = [
    ...plainDevices.filter((d) => d.startsWith('virtio-net-pci,')).map((d) => option(d, 'mac')!),
    ...jsonDevices.filter((d) => d.driver === 'virtio-net-pci').map((d) => String(d.mac)),
  ];
  const shares = [
    ...valuesOf(args, '-virtfs').map((v) => `9p ${option(v, 'mount_tag')} ${option(v, 'path')}`),
    ...jsonDevices
      .filter((d) => d.driver === 'virtio-9p-pci')
      .map((d) => {
        const fsdev = valuesOf(args, '-fsdev').find((v) => option(v, 'id') === d.fsdev)!;
        return `9p ${String(d.mount_tag)} ${option(fsdev, 'path')}`;
      }),
  ];
  const append = valuesOf(args, '-append')[0];
  return {
    accel: valuesOf(args, '-accel')[0]!,
    memoryMiB: parseInt(valuesOf(args, '-m')[0]!, 10),
    cpus: parseInt(valuesOf(args, '-smp')[0]!, 10),
    kernel: valuesOf(args, '-kernel')[0],
    initrd: valuesOf(args, '-initrd')[0],
    append,
    fwCfg: valuesOf(args, '-fw_cfg').sort(),
    disks: disks.sort(),
    ports: ports.sort(),
    macs: macs.sort(),
    shares: shares.sort(),
    rng: devices.some((d) => d.startsWith('virtio-rng-pci') || json(d)?.driver === 'virtio-rng-pci'),
  };
}

const CASES: [string, LaunchPlan][] = [
  ['the stub with its system image', launchPlan()],
  [
    "create's first boot: a qcow2 data disk, the cached root's tar disk, the install spec in fw_cfg",
    launchPlan(
      {
        extraDisks: [{ serial: 'vmstub-root', path: '/cache/roots/root.tar' }],
        extraFwCfg: [{ name: 'opt/org.vmstub/install-spec', file: '/run/web1/spec.json' }],
      },
      {
        data: { path: '/vm/web1/disk.qcow2', format: 'qcow2' },
        cpus: 4,
        memoryMiB: 3072,
        fwCfg: [{ name: 'opt/user/x', string: 'a value with spaces' }],
      },
    ),
  ],
  [
    'a live ISO in a CD drive, with a cloud-init seed and a 9p share',
    launchPlan(
      { kernel: undefined, initrd: undefined, shares: [{ tag: 'fs', path: '/srv/share', mode: '9p' }] },
      { system: undefined, iso: '/isos/live.iso', cloudInitSeed: '/vm/web1/cidata.iso' },
    ),
  ],
  [
    "the host's handoff: the installed kernel with its own command line, and two NICs",
    launchPlan(
      {
        directBoot: {
          kernel: '/vm/web1/vmlinuz',
          initrd: '/vm/web1/initrd',
          cmdline: "root=UUID=1 ro quiet x='a<b&c'",
        },
      },
      {
        nets: [{ kind: 'user' }, { kind: 'user' }],
      },
    ),
  ],
];

describe(
  `libvirt's reading of vmstub's domains (${SYSTEM_URI}, domxml-to-native)`,
  {
    skip: !isRoot && 'libvirtd as root',
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmstub-libvirt-'));
    let stop = () => {};
    before(async () => {
      stop = await withLibvirtd();
    });
    after(() => {
      stop();
      rmSync(dir, { recursive: true, force: true });
    });

    for (const [name, p] of CASES)
      test(`${name}: the same machine as vmstub's own QEMU command line`, () => {
        const file = join(dir, 'domain.xml');
        writeFileSync(file, buildDomainXml(p, { consoleLog: '/run/web1/console.log' }));
        const r = spawnSync('virsh', ['-q', '-c', SYSTEM_URI, 'domxml-to-native', 'qemu-argv', file], {
          encoding: 'utf8',
        });
        assert.equal(r.status, 0, r.stderr);
        const theirs = facts(shellWords(r.stdout.trim()).filter((w) => !/^[A-Z_]+=/.test(w)));
        const ours = facts(buildQemuArgv(p).args);
        // libvirt's own ports: none beyond vmstub's (its console is a pty of its own, not a port).
        assert.deepEqual(theirs, ours);
        assert.ok(
          ours.disks.length > 0 && ours.ports.length === 2 && ours.fwCfg.length > 0,
          'the case has them',
        );
      });

    test("what vmstub refuses to put in a domain, libvirt would indeed mangle: a fw_cfg string's & stays &amp;, its ' becomes &apos;", () => {
      const file = join(dir, 'amp.xml');
      const domain = buildDomainXml(launchPlan(), { consoleLog: '/l' }).replace(
        '>web1</entry>',
        ">a &amp; b's</entry>",
      );
      writeFileSync(file, domain);
      const r = spawnSync('virsh', ['-q', '-c', SYSTEM_URI, 'domxml-to-native', 'qemu-argv', file], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /string=a &amp; b&apos;s/);
    });

    test(
      'a domain boots under libvirt (TCG): the guest sees its disks by serial and its fw_cfg items; virsh shutdown powers it off',
      {
        timeout: 180_000,
      },
      async () => {
        // qemu:///system runs QEMU as libvirt-qemu: everything it opens is in a directory it can enter.
        const files = mkdtempSync('/var/tmp/vmstub-libvirt-boot-');
        chmodSync(files, 0o755);
        const f = fixtureSystemImage();
        const at = (name: string) => join(files, name);
        for (const [from, to] of [
          [f.kernel.vmlinuz, 'vmlinuz'],
          [f.initramfs, 'initramfs'],
          [f.image, 'system.squashfs'],
        ] as const) {
          copyFileSync(from, at(to));
          chmodSync(at(to), 0o644);
        }
        writeFileSync(at('data.img'), '');
        truncateSync(at('data.img'), 64 * 2 ** 20);
        writeFileSync(at('spec.json'), '{"distro":"debian12"}');
        const name = `vmstub-test-${process.pid}`;
        const p = launchPlan(
          {
            kernel: at('vmlinuz'),
            initrd: at('initramfs'),
            qgaSocket: at('qga.sock'),
            eventsFile: at('events.ndjson'),
            extraFwCfg: [{ name: 'opt/org.vmstub/install-spec', file: at('spec.json') }],
          },
          { name, system: at('system.squashfs'), data: { path: at('data.img'), format: 'raw' } },
        );
        writeFileSync(at('domain.xml'), buildDomainXml(p, { consoleLog: at('console.log') }));
        const virsh = (...args: string[]) =>
          spawnSync('virsh', ['-q', '-c', SYSTEM_URI, ...args], { encoding: 'utf8' });
        const consoleLog = () => readFileSync(at('console.log'), 'utf8');
        const client = new LibvirtClient(SYSTEM_URI);
        try {
          await client.define(readFileSync(at('domain.xml'), 'utf8'), at('domain.xml'));
          assert.equal(await client.owner(name), 'vmstub');
          await client.start(name);
          assert.equal(await client.state(name), 'running');
          await waitFor(
            'the fixture guest to be ready',
            () => consoleLog().includes('VMSTUB-FIXTURE-READY'),
            120_000,
          );
          const log = consoleLog();
          assert.match(log, /DISK vda serial=system /);
          assert.match(log, /DISK vdb serial=data sectors=131072/);
          assert.match(log, /FWCFG opt\/org.vmstub\/install-spec=\{"distro":"debian12"\}/);
          assert.match(log, new RegExp(`FWCFG opt/org.vmstub/name=${name}`));
          await client.shutdown(name);
          await waitFor(
            'the domain to shut off',
            () => virsh('domstate', name).stdout.trim() === 'shut off',
            60_000,
          );
          assert.match(consoleLog(), /VMSTUB-FIXTURE-POWEROFF/, 'by the guest, on the ACPI power button');
          await client.undefine(name);
          assert.equal(await client.state(name), undefined);
        } finally {
          virsh('destroy', name);
          virsh('undefine', name);
          rmSync(files, { recursive: true, force: true });
        }
        assert.notEqual(virsh('domstate', name).status, 0, 'the domain is gone');
      },
    );

    test('a domain vmstub did not make is left alone: not started, stopped, redefined or removed, each refused in one line', async () => {
      const name = `not-vmstub-${process.pid}`;
      const file = join(dir, 'foreign.xml');
      // Someone else's domain: the same kind of XML, without vmstub's metadata.
      const ours = buildDomainXml(launchPlan({}, { name }), { consoleLog: join(dir, 'foreign.log') });
      writeFileSync(file, ours.replace(/<metadata>[\s\S]*?<\/metadata>\n?\s*/, ''));
      const virsh = (...args: string[]) =>
        spawnSync('virsh', ['-q', '-c', SYSTEM_URI, ...args], { encoding: 'utf8' });
      assert.equal(virsh('define', file).status, 0);
      const client = new LibvirtClient(SYSTEM_URI);
      try {
        const before = virsh('dumpxml', name).stdout;
        assert.equal(await client.owner(name), 'other');
        for (const [what, act] of [
          ['start', () => client.start(name)],
          ['stop', () => client.destroy(name)],
          ['shut down', () => client.shutdown(name)],
          ['remove', () => client.undefine(name)],
        ] as const)
          await assert.rejects(act(), {
            message: `the libvirt domain ${name} on ${SYSTEM_URI} was not made by vmstub; vmstub does not ${what} it`,
          });
        const mine = join(dir, 'mine.xml');
        writeFileSync(mine, ours);
        await assert.rejects(
          client.define(ours, mine),
          /was not made by vmstub; vmstub does not redefine it/,
        );
        assert.equal(virsh('dumpxml', name).stdout, before, 'the domain is as it was');
        assert.equal(virsh('domstate', name).stdout.trim(), 'shut off');
        assert.equal(await client.owner('no-such-domain'), undefined);
        await assert.rejects(client.start('no-such-domain'), /has no domain no-such-domain to start/);
      } finally {
        virsh('undefine', name);
      }
    });

    test('libvirt refuses what is not a domain, in its own words (the oracle can say no)', () => {
      const file = join(dir, 'bad.xml');
      writeFileSync(
        file,
        buildDomainXml(launchPlan(), { consoleLog: '/l' }).replace(
          "<domain type='qemu'>",
          "<domain type='nosuch'>",
        ),
      );
      const r = spawnSync('virsh', ['-q', '-c', SYSTEM_URI, 'domxml-to-native', 'qemu-argv', file], {
        encoding: 'utf8',
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /nosuch/);
    });
  },
);
