/** The steps and actions every family's plan shares: the target, the system's identity, accounts, SSH, the end. */
import {
  authorizedKeys,
  fstab,
  hosts,
  localeGenLine,
  mkfsArgv,
  resolvedConf,
  sshdConf,
  sudoers,
  userAddArgvs,
} from '../render.js';
import {
  EVERY_BOOT_SCRIPT,
  EVERY_BOOT_UNIT,
  FIRST_BOOT_SCRIPT,
  FIRST_BOOT_UNIT,
  bootScript,
  everyBootUnit,
  firstBootUnit,
} from '../boot-commands.js';
import { CLOUD_CFG, SEED_DIR, cloudCfg, metaData } from '../../cloud-init/seed.js';
import type { InstallSpec } from '../spec.js';
import {
  DATA_DISK,
  LUKS_DEVICE,
  ROOT_UUID,
  chroot,
  type Action,
  type RootAction,
  type Step,
} from './types.js';

/** Format and mount the data disk, mount the share, or check the directory. */
export function targetSteps(spec: InstallSpec, kernelSeries: string, xfsV4 = false): Step[] {
  const steps: Step[] = [];
  // A resume starts over on the disk its unfinished install left (vmstub resume checked that on the host).
  const overwrite = spec.wipe || spec.resume;
  if (spec.target === 'disk') {
    const root = spec.encrypt ? LUKS_DEVICE : DATA_DISK;
    steps.push({
      id: 'format',
      title: `Make ${spec.encrypt ? 'an encrypted (LUKS2)' : 'a'} ${spec.filesystem} filesystem for kernel ${kernelSeries} on the data disk`,
      actions: [
        { kind: 'check-blank', device: DATA_DISK, wipe: spec.wipe, startOver: spec.resume },
        ...(overwrite ? [{ kind: 'exec', argv: ['wipefs', '-a', DATA_DISK] } as Action] : []),
        ...(spec.encrypt ? [{ kind: 'luks-format', device: DATA_DISK } as Action] : []),
        {
          kind: 'exec',
          argv: mkfsArgv(spec.filesystem, kernelSeries, root, overwrite || spec.encrypt, xfsV4),
        },
      ],
    });
    steps.push({
      id: 'mount',
      title: 'Mount the data disk',
      actions: [
        { kind: 'mount', source: root, fstype: spec.filesystem },
        { kind: 'read-uuid', device: root },
      ],
    });
  } else if (spec.target === 'share') {
    steps.push({
      id: 'mount',
      title: 'Mount the share tagged fs',
      actions: [{ kind: 'mount', source: 'fs', fstype: 'virtiofs' }, { kind: 'check-empty-target' }],
    });
  } else {
    steps.push({
      id: 'target',
      title: 'Check the target directory',
      actions: [{ kind: 'check-empty-target' }],
    });
  }
  return steps;
}

/** fstab by the root filesystem's UUID (known once it is made). */
export const fstabAction = (fsType: Parameters<typeof fstab>[1], growRoot: boolean): Action => ({
  kind: 'write',
  path: '/etc/fstab',
  content: fstab(ROOT_UUID, fsType, growRoot),
});

/** What configures a system's accounts and name, the same whether it is installed or built as an image. */
export type SystemIdentity = Pick<InstallSpec, 'hostname' | 'root' | 'users'>;

export const hostnameAction = (spec: Pick<SystemIdentity, 'hostname'>): RootAction => ({
  kind: 'write',
  path: '/etc/hostname',
  content: `${spec.hostname}\n`,
});

export const hostsAction = (spec: Pick<SystemIdentity, 'hostname'>): RootAction => ({
  kind: 'write',
  path: '/etc/hosts',
  content: hosts(spec.hostname),
});

/** Relative, as systemd's timedatectl makes it: it resolves the same from inside and outside the root. */
export const localtimeAction = (spec: InstallSpec): Action => ({
  kind: 'symlink',
  path: '/etc/localtime',
  target: `../usr/share/zoneinfo/${spec.timezone}`,
});

/** The locale generated, where glibc needs locale-gen for it (C.UTF-8 is built in). */
export function localeGenActions(spec: InstallSpec): Action[] {
  const line = localeGenLine(spec.locale);
  return line ? [{ kind: 'write', path: '/etc/locale.gen', content: line }, chroot(['locale-gen'])] : [];
}

/** A machine-id of its own on first boot, not the bootstrap's. */
export const machineIdReset: RootAction = { kind: 'write', path: '/etc/machine-id', content: '' };

const SSH_HOST_KEY_TYPES = ['rsa', 'ecdsa', 'ed25519', 'dsa'];

/**
 * What makes one machine itself on disk, besides the host name: a root bootstrapped on the host is
 * cached without these, and a clone has them made anew. The machine-id is emptied (the first boot
 * fills it; the DHCP client identity follows from it); the rest is removed: the boot makes systemd's
 * random seed and credential secret, the host-keys action the SSH host keys.
 */
export const MACHINE_IDENTITY_FILES = [
  '/var/lib/dbus/machine-id',
  '/var/lib/systemd/random-seed',
  '/var/lib/systemd/credential.secret',
  ...SSH_HOST_KEY_TYPES.flatMap((t) => [`/etc/ssh/ssh_host_${t}_key`, `/etc/ssh/ssh_host_${t}_key.pub`]),
];

/**
 * A clone (vmstub clone): the disk holds a copy of an installed system; only what makes it a machine
 * of its own is made anew, before its first boot: host name, machine-id, random seed, SSH host keys,
 * and an encrypted root's passphrase.
 */
export function identityPlanSteps(spec: InstallSpec): Step[] {
  return [
    {
      id: 'mount',
      title: spec.encrypt
        ? "Give the copied system's LUKS container the clone's passphrase, and mount it"
        : 'Mount the copied system',
      actions: spec.encrypt
        ? [
            { kind: 'luks-rekey', device: DATA_DISK },
            { kind: 'mount', source: LUKS_DEVICE, fstype: spec.filesystem },
          ]
        : [{ kind: 'mount', source: DATA_DISK, fstype: spec.filesystem }],
    },
    {
      id: 'identity',
      title: 'Make the machine itself: host name, machine-id, random seed, SSH host keys',
      actions: [
        { kind: 'chroot-mounts' },
        hostnameAction(spec),
        hostsAction(spec),
        machineIdReset,
        ...MACHINE_IDENTITY_FILES.map((path): Action => ({ kind: 'remove', path })),
        { kind: 'host-keys' },
      ],
    },
    {
      id: 'verify',
      title: 'Check the kernel is where the boot handoff finds it',
      actions: [{ kind: 'verify-boot' }, { kind: 'collect-host-keys' }],
    },
  ];
}

/** systemd-resolved answering on 127.0.0.53, with LLMNR and mDNS. */
export const resolvedActions = (): RootAction[] => [
  { kind: 'write', path: '/etc/systemd/resolved.conf.d/vmstub.conf', content: resolvedConf() },
  { kind: 'symlink', path: '/etc/resolv.conf', target: '../run/systemd/resolve/stub-resolv.conf' },
];

/**
 * sshd takes the first value it reads and reads its drop-ins in name order, so vmstub's sorts before
 * the ones distributions and cloud images ship (50-redhat.conf, 50-cloud-init.conf).
 */
export const SSHD_DROP_IN = '/etc/ssh/sshd_config.d/10-vmstub.conf';

export const sshdDropIn = (spec: InstallSpec): Action => ({
  kind: 'write',
  path: SSHD_DROP_IN,
  content: sshdConf(spec),
});

/** The SSH step: the configuration, then host keys (never the stub's) and whatever the family enables. */
export function sshStep(config: Action, then: Action[]): Step {
  return { id: 'ssh', title: 'OpenSSH server with host keys of its own', actions: [config, ...then] };
}

export function accountsStep(spec: InstallSpec, sudoGroup: string): Step {
  return {
    id: 'accounts',
    title: 'Set up root and users (root locked unless a password hash is given)',
    actions: accountActions(spec, sudoGroup),
  };
}

/** Root locked (or the hash given), users with their keys, passwordless sudo for key-only sudoers. */
export function accountActions(spec: SystemIdentity, sudoGroup: string): RootAction[] {
  const accounts: RootAction[] = [];
  accounts.push(
    spec.root.passwordHash
      ? chroot(['usermod', '-p', spec.root.passwordHash, 'root'])
      : chroot(['passwd', '-l', 'root']),
  );
  if (spec.root.sshKeys.length) {
    accounts.push({
      kind: 'write',
      path: '/root/.ssh/authorized_keys',
      content: authorizedKeys(spec.root.sshKeys),
      mode: 0o600,
    });
  }
  for (const u of spec.users) {
    accounts.push(...userAddArgvs(u, sudoGroup).map((argv) => chroot(argv)));
    accounts.push(
      u.passwordHash ? chroot(['usermod', '-p', u.passwordHash, u.name]) : chroot(['passwd', '-l', u.name]),
    );
    if (u.sshKeys.length) {
      accounts.push({
        kind: 'write',
        path: `/home/${u.name}/.ssh/authorized_keys`,
        content: authorizedKeys(u.sshKeys),
        mode: 0o600,
        owner: u.name,
      });
    }
    if (u.sudo && !u.passwordHash)
      accounts.push({
        kind: 'write',
        path: `/etc/sudoers.d/vmstub-${u.name}`,
        content: sudoers(u.name),
        mode: 0o440,
      });
  }
  return accounts;
}

/** The spec's files, as given: text as UTF-8, base64 as its bytes. */
function filesStep(spec: InstallSpec): Step {
  return {
    id: 'files',
    title: 'Write the files the spec gives',
    actions: spec.files.map((f): Action => ({
      kind: 'put-file',
      path: f.path,
      base64:
        f.encoding === 'base64'
          ? Buffer.from(f.content, 'base64').toString('base64')
          : Buffer.from(f.content, 'utf8').toString('base64'),
      mode: parseInt(f.mode ?? '0644', 8),
      owner: f.owner ?? 'root',
      append: f.append === true,
    })),
  };
}

/** The first-boot and every-boot commands: a script and a one-shot unit each, enabled. */
function bootCommandsStep(spec: InstallSpec): Step {
  const actions: Action[] = [];
  const units: string[] = [];
  const add = (commands: string[], script: string, unit: string, text: string) => {
    if (!commands.length) return;
    actions.push(
      { kind: 'write', path: script, content: bootScript(commands), mode: 0o700 },
      { kind: 'write', path: `/etc/systemd/system/${unit}`, content: text },
    );
    units.push(unit);
  };
  add(spec.firstBoot, FIRST_BOOT_SCRIPT, FIRST_BOOT_UNIT, firstBootUnit());
  add(spec.everyBoot, EVERY_BOOT_SCRIPT, EVERY_BOOT_UNIT, everyBootUnit());
  actions.push(chroot(['systemctl', 'enable', ...units]));
  return { id: 'boot-commands', title: 'Set up the commands run at boot', actions };
}

/** The user-data for the system's own cloud-init, where it looks first: its NoCloud seed directory. */
function cloudInitSeedStep(spec: InstallSpec, userData: string): Step {
  return {
    id: 'cloud-init-seed',
    title: "Seed the user-data for the system's own cloud-init (NoCloud)",
    actions: [
      { kind: 'write', path: `${SEED_DIR}/user-data`, content: userData, mode: 0o600 },
      {
        kind: 'write',
        path: `${SEED_DIR}/meta-data`,
        content: metaData(spec.hostname, spec.hostname),
        mode: 0o600,
      },
      { kind: 'write', path: CLOUD_CFG, content: cloudCfg() },
    ],
  };
}

/**
 * The cloud-init seed, the spec's files and boot commands, the user's post-install commands, then
 * the check that the handoff will find a kernel.
 */
export function finalSteps(spec: InstallSpec): Step[] {
  const steps: Step[] = [];
  if (spec.userData) steps.push(cloudInitSeedStep(spec, spec.userData));
  if (spec.files.length) steps.push(filesStep(spec));
  if (spec.firstBoot.length || spec.everyBoot.length) steps.push(bootCommandsStep(spec));
  if (spec.postInstall.length) {
    steps.push({
      id: 'post-install',
      title: 'Run the post-install commands',
      actions: spec.postInstall.map((c) => chroot(['/bin/sh', '-c', c])),
    });
  }
  steps.push({
    id: 'verify',
    title: 'Check the kernel is where the boot handoff finds it',
    actions: [{ kind: 'verify-boot' }, { kind: 'collect-host-keys' }],
  });
  return steps;
}
