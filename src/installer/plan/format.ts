import { utf8Text } from '../../util/text.js';
import {
  HOOKS,
  LUKS_FORMAT_OPTIONS,
  LUKS_KEYSLOT_OPTIONS,
  LUKS_MAPPING,
  STAGING,
  TARGET,
  type Action,
  type Plan,
} from './types.js';

type Describers = { [K in Action['kind']]: (a: Extract<Action, { kind: K }>) => string };

/** One line (or a few) per action, as vmstub plan prints it; a new kind of action must say how it reads. */
const DESCRIBE: Describers = {
  exec: (a) =>
    `$ ${a.chroot ? 'chroot TARGET ' : ''}${a.argv.map((x) => (/[\s"']/.test(x) ? `'${x}'` : x)).join(' ')}${a.input ? ' <<< (input)' : ''}`,
  write: (a) =>
    `write ${a.in === 'staging' ? 'STAGING' : a.in === 'hooks' ? 'HOOKS' : 'TARGET'}${a.path}${a.mode ? ` (mode ${a.mode.toString(8)})` : ''}${a.owner ? ` owned by ${a.owner}` : ''}`,
  'put-file': (a) =>
    `${a.append ? 'append to' : 'write'} TARGET${a.path} (mode ${a.mode.toString(8).padStart(4, '0')}, owned by ${a.owner}, ${Buffer.from(a.base64, 'base64').length} bytes)`,
  symlink: (a) => `link TARGET${a.path} -> ${a.target}`,
  remove: (a) => `remove TARGET${a.path}`,
  'rpm-bootstrap': (a) =>
    [
      `rpm-bootstrap ${a.packages.join(' ')} into TARGET (rpm database ${a.dbpath})`,
      ...a.repos.map((r) => `     from ${r.id}: ${r.baseurl}`),
      ...(a.keysFromFirstPackage?.length
        ? [
            `     keys: from ${a.packages[0]} itself (${a.keysFromFirstPackage.join(', ')}), then checked against it`,
          ]
        : a.keys.map((k) => `     key: ${k}`)),
      ...(a.sha1KeyBindings
        ? ['     its SHA-1 key self-signatures accepted (package signatures still need SHA-2)']
        : []),
    ].join('\n'),
  'gentoo-stage3': (a) =>
    [
      `fetch the newest ${a.flavour} named by ${a.mirror}/${a.dir}/latest-${a.flavour}.txt`,
      'file' in a.releaseKey
        ? `     verify its DIGESTS (signed by the one key in ${a.releaseKey.file}) and its SHA512`
        : `     verify its DIGESTS (signed by ${a.releaseKey.fingerprint}, key from ${a.releaseKey.url}) and its SHA512`,
      '     unpack it into TARGET with xattrs and numeric owners',
    ].join('\n'),
  'copy-in': (a) => `copy ${a.from} to TARGET${a.path}`,
  'check-blank': (a) =>
    `refuse ${a.device} if it holds a filesystem or partition table${a.wipe ? ' (unless: --wipe given, so it is wiped)' : a.startOver ? ' (unless: a resume, so the unfinished install is wiped)' : ''}`,
  'check-empty-target': () => 'refuse the target unless it is empty',
  'luks-format': (a) =>
    `$ cryptsetup luksFormat ${LUKS_FORMAT_OPTIONS.join(' ')} --key-file=(the passphrase, from fw_cfg) ${a.device}\n   $ cryptsetup open --key-file=(the same) ${a.device} ${LUKS_MAPPING}`,
  'luks-rekey': (a) =>
    `$ cryptsetup luksChangeKey ${LUKS_KEYSLOT_OPTIONS.join(' ')} --key-file=(the source's passphrase, from fw_cfg) ${a.device} (the clone's, from fw_cfg)\n   $ cryptsetup open --key-file=(the clone's) ${a.device} ${LUKS_MAPPING}`,
  mount: (a) => `mount ${a.source} (${a.fstype}) on TARGET`,
  'read-uuid': (a) => `read the filesystem UUID of ${a.device} (for fstab)`,
  'chroot-mounts': () => 'mount proc, sys, dev and run in TARGET for chroot commands',
  'verify-boot': () => 'find the installed kernel and initramfs as the boot handoff will',
  'host-keys': () =>
    'put in the SSH host keys the host made for this system (or, without them: $ chroot TARGET ssh-keygen -A)',
  'collect-host-keys': () => "read the new system's SSH host public keys (reported to the host)",
};

const describe = <K extends Action['kind']>(a: Extract<Action, { kind: K }>): string =>
  (DESCRIBE[a.kind] as (a: Action) => string)(a);

/** What --files shows of a written file: its text (a file that is not UTF-8 text is not shown). */
function shownContent(a: Action): string | undefined {
  if (a.kind === 'write') return a.content;
  if (a.kind !== 'put-file') return undefined;
  const text = utf8Text(Buffer.from(a.base64, 'base64'));
  // eslint-disable-next-line no-control-regex -- control bytes other than tab and newline mean binary
  return text !== undefined && !/[\x00-\x08\x0e-\x1f]/.test(text) ? text : undefined;
}

/** The plan as people read it; with files, each written file's content too. */
export function formatPlan(plan: Plan, showFiles: boolean): string {
  const out = [
    `Install ${plan.distro.name} (${plan.spec.arch}) as ${plan.spec.hostname}: ${plan.steps.length} steps`,
    `TARGET = ${TARGET}`,
    `STAGING = ${STAGING}`,
    `HOOKS = ${HOOKS}`,
  ];
  plan.steps.forEach((s, i) => {
    out.push('', `${i + 1}. ${s.id}: ${s.title}`);
    for (const a of s.actions) {
      out.push(`   ${describe(a)}`);
      const content = showFiles ? shownContent(a) : undefined;
      if (content) for (const line of content.replace(/\n$/, '').split('\n')) out.push(`   | ${line}`);
    }
  });
  return out.join('\n') + '\n';
}
