/**
 * An OpenSSH config block per instance, so plain `ssh NAME` (and scp, rsync, sftp, editors' remote
 * plugins) reaches it: instances/NAME/ssh/config, rewritten at every start (the forwarded port changes),
 * gone with the instance directory. The user includes them all once with sshConfigInclude().
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { sshOptions, type SshTarget } from './ssh.js';
import { instancesRoot, writeFileAtomic, type InstancePaths } from './store.js';

/** Host keys are recorded under this alias, so strict checking holds whatever the port. */
export const hostKeyAlias = (name: string): string => `vmstub-${name}`;

/** How vmstub reaches an instance's sshd: its forwarded port, its known_hosts, its own key if it has one. */
export function instanceSshTarget(name: string, paths: InstancePaths, port: number, user: string): SshTarget {
  return {
    port,
    user,
    knownHosts: paths.knownHosts,
    hostKeyAlias: hostKeyAlias(name),
    identity: existsSync(paths.sshKey) ? paths.sshKey : undefined,
  };
}

/** ssh_config splits on white space; a value with any is quoted (ssh_config(5) has no escape for a quote). */
function configValue(value: string): string {
  if (value.includes('"')) throw new Error(`an ssh_config value cannot hold a double quote: ${value}`);
  return /\s/.test(value) ? `"${value}"` : value;
}

/** The Host block for one instance: its name and its alias both match. */
export function sshConfigBlock(name: string, target: SshTarget): string {
  const lines = [
    `# vmstub instance ${name}: rewritten at each start, since the forwarded port changes`,
    `Host ${name} ${hostKeyAlias(name)}`,
    '  HostName 127.0.0.1',
    `  User ${configValue(target.user)}`,
    ...sshOptions(target).map(([key, value]) => `  ${key} ${configValue(value)}`),
  ];
  return lines.join('\n') + '\n';
}

/** Writes (or, for an instance with no forwarded SSH port, removes) the instance's config block. */
export function writeSshConfig(
  name: string,
  paths: InstancePaths,
  user: string,
  port: number | undefined,
): void {
  if (port === undefined) {
    rmSync(paths.sshConfig, { force: true });
    return;
  }
  writeFileAtomic(paths.sshConfig, sshConfigBlock(name, instanceSshTarget(name, paths, port, user)));
}

/** The one line that includes every instance's block (ssh expands the glob on every run). */
export const sshConfigInclude = (root = instancesRoot()): string =>
  `Include ${configValue(join(root, '*', 'ssh', 'config'))}`;

export const userSshConfig = (home = homedir()): string => join(home, '.ssh', 'config');

/** Whether the user's ssh config already has the Include line (as its own line, anywhere). */
export function hasInclude(configText: string, include: string): boolean {
  return configText.split('\n').some((l) => l.trim() === include);
}

/**
 * The user's ssh config with the Include line put first: an Include after a Host or Match line would
 * apply only inside that block. Unchanged when it is there already.
 */
export function withInclude(configText: string, include: string): string {
  if (hasInclude(configText, include)) return configText;
  return `# vmstub instances (vmstub ssh-config)\n${include}\n\n${configText}`;
}

/** Adds the Include line to the user's ssh config (made 0600, ~/.ssh 0700, if missing); true if it changed. */
export function installInclude(config: string, include: string): boolean {
  // A config kept elsewhere and linked (a dotfiles checkout) is edited where it is, the link kept.
  const file = existsSync(config) ? realpathSync(config) : config;
  const before = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const after = withInclude(before, include);
  if (after === before) return false;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, after, existsSync(file) ? statSync(file).mode & 0o777 : 0o600);
  return true;
}
