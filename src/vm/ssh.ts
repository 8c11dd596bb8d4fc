import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTool, runChecked } from '../util/exec.js';

export interface SshTarget {
  port: number;
  user: string;
  knownHosts: string;
  /** Host keys are recorded under this alias, so they stay valid when the forwarded port changes. */
  hostKeyAlias: string;
  identity?: string;
}

/** The ssh options that reach an instance: its own known_hosts with strict checking, under its alias, with its key. */
export function sshOptions(t: SshTarget): [string, string][] {
  const options: [string, string][] = [
    ['Port', String(t.port)],
    ['UserKnownHostsFile', t.knownHosts],
    ['GlobalKnownHostsFile', '/dev/null'],
    ['StrictHostKeyChecking', 'yes'],
    ['HostKeyAlias', t.hostKeyAlias],
    ['CheckHostIP', 'no'],
    ['LogLevel', 'ERROR'],
  ];
  if (t.identity) options.push(['IdentityFile', t.identity]);
  return options;
}

/** ssh's argv for an instance: its forwarded port, its own known_hosts with strict checking, its key. */
export function sshArgs(t: SshTarget, command: string[] = [], extra: string[] = []): string[] {
  // ssh keeps the first value it is given for an option, so the caller's extra options come first.
  const args = [...extra, ...sshOptions(t).flatMap(([key, value]) => ['-o', `${key}=${value}`])];
  args.push(`${t.user}@127.0.0.1`);
  if (command.length) args.push('--', ...command);
  return args;
}

/** Tries once to read an SSH banner: QEMU's user-mode forward accepts connections even when nothing listens in the guest. */
export function readSshBanner(port: number, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let data = '';
    const done = (banner: string | undefined) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(banner);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      const nl = data.indexOf('\n');
      if (nl >= 0) done(data.startsWith('SSH-') ? data.slice(0, nl).trim() : undefined);
    });
    sock.on('error', () => done(undefined));
    sock.on('close', () => done(undefined));
  });
}

/** Polls until an SSH server answers on the port with a banner, or the time is up. */
export async function waitForSshBanner(
  port: number,
  timeoutMs: number,
  stillRunning: () => boolean,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && stillRunning()) {
    const banner = await readSshBanner(port, Math.min(3000, Math.max(500, deadline - Date.now())));
    if (banner) return banner;
    await new Promise((r) => setTimeout(r, 500));
  }
  return undefined;
}

/** The host key types ssh-keygen -A makes on a current OpenSSH. */
const HOST_KEY_TYPES = ['rsa', 'ecdsa', 'ed25519'] as const;

/**
 * SSH host keys for a new system, made here natively (under TCG the guest takes about 10 s for the
 * RSA key alone): file name under /etc/ssh -> content. Made in a private temporary directory, which
 * is removed; the caller hands them to the stub and removes its copy.
 */
export async function makeHostKeys(hostname: string): Promise<Record<string, string>> {
  const keygen = requireTool('ssh-keygen', 'openssh-client');
  const dir = mkdtempSync(join(tmpdir(), 'vmstub-host-keys-'));
  try {
    const keys: Record<string, string> = {};
    for (const type of HOST_KEY_TYPES) {
      const name = `ssh_host_${type}_key`;
      await runChecked(keygen, ['-q', '-t', type, '-N', '', '-C', `root@${hostname}`, '-f', join(dir, name)]);
      keys[name] = readFileSync(join(dir, name), 'utf8');
      keys[`${name}.pub`] = readFileSync(join(dir, `${name}.pub`), 'utf8');
    }
    return keys;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The instance's own key pair, made once: used when the host user has no keys of their own. */
export async function ensureInstanceKey(keyPath: string, comment: string): Promise<string> {
  if (!existsSync(keyPath)) {
    const keygen = requireTool('ssh-keygen', 'openssh-client');
    await runChecked(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', keyPath]);
  }
  return `${keyPath}.pub`;
}
