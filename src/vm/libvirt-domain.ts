/**
 * A launch as a libvirt domain: the same LaunchPlan that buildQemuArgv makes a QEMU command line of,
 * made into domain XML for `virsh define`. A pure function, tested by table and against libvirt's own
 * translation (`virsh domxml-to-native qemu-argv`, test/integration/libvirt-domain.test.ts).
 *
 * What libvirt does itself and the plan's QEMU-only parts therefore leave out: the monitor (QMP socket),
 * the pid file and the console's stdio (libvirt keeps a pty, logged to a file, which `virsh console`
 * reaches, locally and over qemu+ssh). What Debian 12's libvirt 9.0 cannot say in a domain: port
 * forwards of user-mode networking (its <portForward> is for passt, which 9.0 refuses); they are added
 * to the running domain through the monitor (hostfwd_add) instead. aarch64's TCG CPU tweaks
 * (pauth-impdef, lpa2) have no element either: libvirt's maximum CPU is QEMU's max. A fw_cfg string
 * with a comma or any of & < > ' " is refused: libvirt 9.0 writes an entry into -fw_cfg as its own XML
 * spells it, commas not doubled and those five escaped (domxml-to-native shows `string=it&apos;s`),
 * so QEMU would read another option or the entity.
 */
import { BOOT_EXPORT_PORT } from '../boot/boot-export.js';
import { EVENTS_PORT } from '../events/protocol.js';
import type { DiskSpec } from './definition.js';
import { FW_CFG_DISK_SERIAL } from './fw-cfg-disk.js';
import { macFor } from './network.js';
import { VmstubError } from '../util/errors.js';
import { ARCH_TRAITS, DATA_DRIVE, fwCfgItems, kernelCommandLine, type LaunchPlan } from './qemu-argv.js';

/**
 * The mark of a domain vmstub made: its metadata element, in this namespace. vmstub defines, changes
 * and removes only domains that carry it (src/vm/libvirt-client.ts).
 */
export const VMSTUB_XMLNS = 'urn:vmstub:instance:1';

/** Text content escaped for XML (quotes need no escape there). */
const xmlText = (v: string): string => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Attribute values escaped for XML. */
export const xmlEscape = (v: string): string =>
  v
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');

/** One element: attributes (undefined ones left out), then children or text. */
function el(
  name: string,
  attrs: Record<string, string | number | undefined> = {},
  body?: string | string[],
): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}='${xmlEscape(String(v))}'`)
    .join('');
  if (body === undefined) return `<${name}${a}/>`;
  if (typeof body === 'string') return `<${name}${a}>${xmlText(body)}</${name}>`;
  const inner = body.flatMap((child) => child.split('\n')).map((line) => `  ${line}`);
  return [`<${name}${a}>`, ...inner, `</${name}>`].join('\n');
}

/** virtio disks get vda, vdb, ... in the order they are added, as QEMU's virtio-blk-pci devices do. */
function virtioDisk(index: number, serial: string, disk: DiskSpec, readonly: boolean, boot?: number): string {
  const dev = `vd${String.fromCharCode('a'.charCodeAt(0) + index)}`;
  return el('disk', { type: 'file', device: 'disk' }, [
    el('driver', {
      name: 'qemu',
      type: disk.format,
      discard: readonly ? undefined : 'unmap',
      detect_zeroes: readonly ? undefined : 'unmap',
    }),
    el('source', { file: disk.path }),
    el('target', { dev, bus: 'virtio' }),
    el('serial', {}, serial),
    ...(readonly ? [el('readonly')] : []),
    ...(boot === undefined ? [] : [el('boot', { order: boot })]),
  ]);
}

const channel = (type: 'unix' | 'file', path: string, name: string) =>
  el('channel', { type }, [
    type === 'unix' ? el('source', { mode: 'bind', path }) : el('source', { path, append: 'on' }),
    el('target', { type: 'virtio', name }),
  ]);

export interface DomainOptions {
  /** Where libvirt logs the console (the pty's output). */
  consoleLog: string;
}

/** The domain XML for a launch: a pure function of the plan, as buildQemuArgv is. */
export function buildDomainXml(plan: LaunchPlan, o: DomainOptions): string {
  const { def } = plan;
  const traits = ARCH_TRAITS[plan.arch];
  const usesVirtiofs = plan.shares.some((s) => s.mode === 'virtiofs');

  const os: string[] = [el('type', { arch: plan.arch, machine: traits.machine }, 'hvm')];
  if (plan.firmware) {
    const f = plan.firmware;
    os.push(
      el('loader', { readonly: 'yes', type: 'pflash', secure: f.requiresSmm ? 'yes' : undefined }, f.code),
      el('nvram', { format: f.format === 'qcow2' ? 'qcow2' : undefined }, f.vars),
    );
  }
  const boot =
    plan.directBoot ??
    (plan.kernel
      ? { kernel: plan.kernel, initrd: plan.initrd, cmdline: kernelCommandLine(plan) }
      : undefined);
  if (boot) {
    os.push(el('kernel', {}, boot.kernel));
    if (boot.initrd) os.push(el('initrd', {}, boot.initrd));
    os.push(el('cmdline', {}, boot.cmdline));
  }

  const features = [el('acpi'), ...(plan.arch === 'x86_64' ? [el('apic')] : [])];
  if (plan.firmware?.requiresSmm) features.push(el('smm', { state: 'on' }));

  const devices: string[] = [];
  let disks = 0;
  const disk = (serial: string, spec: DiskSpec, readonly: boolean, order?: number) =>
    devices.push(virtioDisk(disks++, serial, spec, readonly, order));
  if (def.system) disk('system', { path: def.system, format: 'raw' }, true);
  if (def.iso) {
    devices.push(
      el('controller', { type: 'scsi', index: 0, model: 'virtio-scsi' }),
      el('disk', { type: 'file', device: 'cdrom' }, [
        el('driver', { name: 'qemu', type: 'raw' }),
        el('source', { file: def.iso }),
        el('target', { dev: 'sda', bus: 'scsi' }),
        el('readonly'),
        el('boot', { order: 1 }),
      ]),
    );
  }
  if (def.bootDisk) disk('boot', def.bootDisk, false, 1);
  if (def.cloudInitSeed) disk('cidata', { path: def.cloudInitSeed, format: 'raw' }, true);
  if (def.data) disk(DATA_DRIVE, def.data, false);
  else if (plan.volatileData) disk(DATA_DRIVE, { path: plan.volatileData, format: 'raw' }, false);
  for (const d of plan.extraDisks ?? []) disk(d.serial, { path: d.path, format: 'raw' }, true);
  if (!traits.fwCfg && plan.fwCfgDisk)
    disk(FW_CFG_DISK_SERIAL, { path: plan.fwCfgDisk, format: 'raw' }, true);

  for (const share of plan.shares)
    devices.push(
      el('filesystem', { type: 'mount', accessmode: share.mode === 'virtiofs' ? 'passthrough' : 'mapped' }, [
        ...(share.mode === 'virtiofs' ? [el('driver', { type: 'virtiofs' })] : []),
        el('source', { dir: share.path }),
        el('target', { dir: share.tag }),
      ]),
    );

  def.nets.forEach((net, i) => {
    const common = [
      el('mac', { address: macFor(def.name, i) }),
      el('model', { type: 'virtio' }),
      el('rom', { enabled: 'no' }),
    ];
    const iface =
      net.kind === 'user'
        ? el('interface', { type: 'user' }, common)
        : net.kind === 'bridge'
          ? el('interface', { type: 'bridge' }, [el('source', { bridge: net.bridge }), ...common])
          : el('interface', { type: 'ethernet' }, [
              el('target', { dev: net.ifname, managed: 'no' }),
              ...common,
            ]);
    devices.push(iface);
  });

  const log = el('log', { file: o.consoleLog, append: 'on' });
  devices.push(
    def.hvc
      ? el('console', { type: 'pty' }, [log, el('target', { type: 'virtio', port: 0 })])
      : el('serial', { type: 'pty' }, [log, el('target', { port: 0 })]),
    channel('unix', plan.qgaSocket, 'org.qemu.guest_agent.0'),
    channel('file', plan.eventsFile, EVENTS_PORT),
  );
  if (plan.bootExport && !plan.directBoot) devices.push(channel('file', plan.bootExport, BOOT_EXPORT_PORT));
  devices.push(
    el('rng', { model: 'virtio' }, [el('backend', { model: 'random' }, '/dev/urandom')]),
    el('memballoon', { model: 'none' }),
  );

  const domain: string[] = [
    el('name', {}, def.name),
    el('metadata', {}, [
      el('vmstub:instance', { 'xmlns:vmstub': VMSTUB_XMLNS }, [
        el('vmstub:name', {}, def.name),
        el('vmstub:created', {}, def.createdAt),
      ]),
    ]),
    el('memory', { unit: 'MiB' }, String(def.memoryMiB)),
    el('vcpu', {}, String(def.cpus)),
    ...(usesVirtiofs
      ? [el('memoryBacking', {}, [el('source', { type: 'memfd' }), el('access', { mode: 'shared' })])]
      : []),
    el('os', {}, os),
    el('features', {}, features),
    plan.accel === 'kvm' ? el('cpu', { mode: 'host-passthrough' }) : el('cpu', { mode: 'maximum' }),
  ];
  if (traits.fwCfg) {
    for (const item of fwCfgItems(plan))
      if ('string' in item && /[,&<>'"]/.test(item.string))
        throw new VmstubError(
          `fw_cfg item ${item.name}: libvirt 9.0 passes a string to QEMU as its XML spells it (a comma ends it; & < > ' " arrive escaped); give it as a file`,
        );
    const entries = fwCfgItems(plan).map((item) =>
      'file' in item
        ? el('entry', { name: item.name, file: item.file })
        : el('entry', { name: item.name }, item.string),
    );
    domain.push(el('sysinfo', { type: 'fwcfg' }, entries));
  }
  domain.push(
    el('on_poweroff', {}, 'destroy'),
    // Every reboot goes through the stub again, which hands over to the installed system.
    el('on_reboot', {}, 'restart'),
    el('on_crash', {}, 'destroy'),
    el('devices', {}, devices),
  );
  return el('domain', { type: plan.accel === 'kvm' ? 'kvm' : 'qemu' }, domain) + '\n';
}
