/**
 * The NoCloud seed for a system that installs cloud-init itself: the user-data as written, meta-data
 * naming the instance, and the settings that keep what vmstub made (its network configuration, the
 * SSH host keys it recorded, apt's sources, the root's growth) and spare cloud-init probing for other
 * datasources.
 */

export const SEED_DIR = '/var/lib/cloud/seed/nocloud';
export const CLOUD_CFG = '/etc/cloud/cloud.cfg.d/90-vmstub.cfg';
/** The package whose presence in a spec makes --user-data a seed rather than something vmstub applies. */
export const CLOUD_INIT_PACKAGE = 'cloud-init';

/**
 * NoCloud meta-data: the instance's id (from `instance`) and host name, and public keys, which
 * cloud-init authorizes for the system's default user.
 */
export function metaData(instance: string, hostname: string, publicKeys: readonly string[] = []): string {
  const lines = [`instance-id: iid-vmstub-${instance}`, `local-hostname: ${hostname}`];
  if (publicKeys.length) lines.push('public-keys:', ...publicKeys.map((k) => `  - ${JSON.stringify(k)}`));
  return lines.join('\n') + '\n';
}

export const cloudCfg = (): string =>
  [
    '# vmstub: the seed is in ' + SEED_DIR,
    'datasource_list: [NoCloud, None]',
    '# The network is configured by vmstub (systemd-networkd: DHCP on every ethernet interface).',
    'network: {config: disabled}',
    '# vmstub recorded these host keys (known_hosts): they stay.',
    'ssh_deletekeys: false',
    '# The root filesystem grows at every boot by itself (x-systemd.growfs in fstab).',
    'growpart: {mode: "off"}',
    'resize_rootfs: false',
    "# vmstub wrote apt's sources (the spec's mirror); cloud-init's template would replace them.",
    'apt: {preserve_sources_list: true}',
    '',
  ].join('\n');
