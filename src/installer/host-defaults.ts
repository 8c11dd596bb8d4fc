import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The host's time zone: /etc/timezone, else where /etc/localtime points, else TZ, else UTC. */
export function hostTimezone(env: NodeJS.ProcessEnv = process.env): string {
  try {
    const tz = readFileSync('/etc/timezone', 'utf8').trim();
    if (tz) return tz;
  } catch {
    // no /etc/timezone
  }
  try {
    const m = /zoneinfo\/(.+)$/.exec(readlinkSync('/etc/localtime'));
    if (m) return m[1]!;
  } catch {
    // not a link
  }
  if (env.TZ && /^[A-Za-z]/.test(env.TZ)) return env.TZ.replace(/^:/, '');
  return 'UTC';
}

/**
 * The user's SSH public keys: ~/.ssh/*.pub, and the agent's (ssh-add -L). The original read only
 * three file names and no agent.
 */
export function hostPublicKeys(home = homedir(), env: NodeJS.ProcessEnv = process.env): string[] {
  const keys: string[] = [];
  const dir = join(home, '.ssh');
  if (existsSync(dir)) {
    for (const f of readdirSync(dir)
      .filter((n) => n.endsWith('.pub'))
      .sort()) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n'))
        if (line.trim()) keys.push(line.trim());
    }
  }
  if (env.SSH_AUTH_SOCK) {
    const r = spawnSync('ssh-add', ['-L'], { encoding: 'utf8', env, timeout: 3000 });
    if (r.status === 0) for (const line of r.stdout.split('\n')) if (line.trim()) keys.push(line.trim());
  }
  return [...new Set(keys)];
}
