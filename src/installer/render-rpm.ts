/** Files an RPM-family install writes: pure functions of the catalog entry and the spec (snapshot-tested). */
import type { RpmRepo } from '../bootstrap/rpm/bootstrap.js';
import type { RpmDistro } from '../catalog/types.js';
import type { InstallSpec } from './spec.js';

/** Where the installer puts the distribution's signing keys inside the target. */
export const TARGET_KEY_DIR = '/etc/pki/rpm-gpg';
export const targetKeyPath = (i: number) => `${TARGET_KEY_DIR}/RPM-GPG-KEY-vmstub-${i + 1}`;
export const INSTALL_REPO_FILE = '/etc/yum.repos.d/vmstub.repo';

/** The release's repositories on the mirror the spec names, or its official one. */
export function rpmRepos(d: RpmDistro, spec: InstallSpec): RpmRepo[] {
  const mirror = (spec.mirror ?? d.mirror).replace(/\/+$/, '');
  return d.repos.map((r) => ({
    id: `vmstub-${r.id}`,
    baseurl: `${mirror}/${r.path.replace(/\$basearch/g, spec.arch).replace(/\$releasever/g, d.releasever)}`,
  }));
}

/** The signing keys in the stub: the spec's own (for its mirror), else the distribution's. */
export function stubKeys(d: RpmDistro, spec: InstallSpec): string[] {
  if (spec.keyring) return [spec.keyring];
  return d.keys.from === 'stub' ? d.keys.files : [];
}

/** yum/dnf repository definitions, GPG checks on, for the install (and afterwards where vmstub keeps them). */
export function yumRepoFile(d: RpmDistro, spec: InstallSpec): string {
  const keys = stubKeys(d, spec).map((_, i) => `file://${targetKeyPath(i)}`);
  return (
    rpmRepos(d, spec)
      .map((r) =>
        [
          `[${r.id}]`,
          `name=${d.name} ${r.id.replace(/^vmstub-/, '')} (vmstub)`,
          `baseurl=${r.baseurl}`,
          'enabled=1',
          'gpgcheck=1',
          ...(keys.length ? [`gpgkey=${keys.join(' ')}`] : []),
          ...(spec.proxy ? [`proxy=${spec.proxy}`] : []),
        ].join('\n'),
      )
      .join('\n\n') + '\n'
  );
}

/** NetworkManager: DHCP (v4 and v6) on any ethernet interface; LLMNR and mDNS where resolved runs. */
export function nmKeyfile(d: RpmDistro): string {
  return [
    '[connection]',
    'id=vmstub-ethernet',
    'type=ethernet',
    'autoconnect=true',
    ...(d.nameService === 'resolved' ? ['llmnr=2', 'mdns=2'] : []),
    '',
    '[match]',
    'interface-name=*',
    '',
    '[ipv4]',
    'method=auto',
    '',
    '[ipv6]',
    'method=auto',
    '',
  ].join('\n');
}

/** EL6: the network service's DHCP on eth0 (its udev names the first virtio NIC so). */
export function ifcfgEth0(): string {
  return ['DEVICE=eth0', 'TYPE=Ethernet', 'ONBOOT=yes', 'BOOTPROTO=dhcp', 'NM_CONTROLLED=no', ''].join('\n');
}

export function sysconfigNetwork(hostname: string): string {
  return ['NETWORKING=yes', `HOSTNAME=${hostname}`, ''].join('\n');
}

/** The glibc language pack a locale needs (EL8+, Fedora): en_US.UTF-8 -> glibc-langpack-en. */
export function langpackFor(locale: string): string {
  const lang = /^([a-z]{2,3})_/.exec(locale)?.[1];
  return lang ? `glibc-langpack-${lang}` : 'glibc-minimal-langpack';
}

/** Older sshd_config has no Include: the one setting vmstub needs is edited in place. */
export function sshdPasswordSed(spec: InstallSpec): string[] {
  const passwords = Boolean(spec.root.passwordHash) || spec.users.some((u) => u.passwordHash);
  return [
    'sed',
    '-i',
    '-e',
    `s/^#\\?PasswordAuthentication .*/PasswordAuthentication ${passwords ? 'yes' : 'no'}/`,
    '/etc/ssh/sshd_config',
  ];
}
