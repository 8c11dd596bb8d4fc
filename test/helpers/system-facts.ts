/**
 * What an installed system is, as two installs of the same spec must agree on it: its packages and
 * versions, every file the plan writes (read back from the running system), and the units enabled.
 * Per-machine values (the name, the root filesystem's UUID, a loopback mirror's address) are
 * normalized; the machine-id, which each system makes at its first boot, is left out.
 */
import type { Plan } from '../../src/installer/plan/index.js';

type Ssh = (...command: string[]) => string;

/** The files a plan writes or links in the target (staged files land at the same path). */
export function plannedFiles(plan: Plan): string[] {
  const paths = new Set<string>();
  for (const step of plan.steps)
    for (const a of step.actions)
      if ((a.kind === 'write' && a.in !== 'hooks') || a.kind === 'symlink') paths.add(a.path);
  paths.delete('/etc/machine-id');
  return [...paths].sort();
}

export function systemFacts(
  ssh: Ssh,
  files: string[],
  name: string,
  mirrorUrl?: string,
): { packages: string; config: string } {
  const packages = ssh('dpkg-query', '-W', "-f='${Package} ${Version}\\n'").split('\n').sort().join('\n');
  const script = files
    .map((f) => `echo "== ${f}"; if [ -L '${f}' ]; then readlink '${f}'; else cat '${f}'; fi`)
    .join('; ');
  let config = ssh('sh', '-c', `'${script.replace(/'/g, `'\\''`)}'`);
  config += '\n== enabled units\n';
  config += ssh('systemctl', 'list-unit-files', '--state=enabled', '--no-legend', '--no-pager')
    .split('\n')
    .map((l) => l.split(/\s+/)[0])
    .filter(Boolean)
    .sort()
    .join('\n');
  config = config
    .replaceAll(name, 'NAME')
    .replace(/UUID=[0-9a-f-]+/g, 'UUID=ROOT')
    .replaceAll(mirrorUrl ?? '\0', 'http://deb.debian.org/');
  return { packages, config };
}
