/**
 * libvirt for the tests: the system daemons started when they are not running (there is no systemd
 * here to start them), and stopped afterwards only if the tests started them. The tests' domains are
 * TCG ones (type qemu): libvirtd is started without KVM (below).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export const SYSTEM_URI = 'qemu:///system';

const answers = () => spawnSync('virsh', ['-c', SYSTEM_URI, 'version'], { encoding: 'utf8' }).status === 0;

/** libvirtd (with virtlogd, which it does not start itself) answering on qemu:///system; returns the undo. */
export async function withLibvirtd(): Promise<() => void> {
  if (spawnSync('which', ['virsh', 'libvirtd', 'virtlogd']).status !== 0)
    throw new Error('libvirt is not installed (scripts/setup-host installs libvirt-daemon-system)');
  if (answers()) return () => {};
  const started: string[] = [];
  execFileSync('virtlogd', ['-d']);
  started.push('/run/virtlogd.pid');
  // Where /dev/kvm is there but runs no guest (these machines' PVM module), libvirtd finds it usable,
  // probes QEMU with KVM, gets TCG, and probes again on every call: over 100 s for each virsh
  // command. Here it sees /dev/null in its place, finds no KVM at once, and keeps its probe.
  execFileSync('unshare', [
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    '[ ! -e /dev/kvm ] || mount --bind /dev/null /dev/kvm; exec libvirtd -d',
  ]);
  started.push('/run/libvirtd.pid');
  for (let i = 0; i < 50 && !answers(); i++) await new Promise((r) => setTimeout(r, 200));
  if (!answers()) throw new Error(`libvirtd started but ${SYSTEM_URI} does not answer`);
  return () => {
    for (const pidFile of started.reverse())
      if (existsSync(pidFile)) {
        try {
          process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGTERM');
        } catch {
          // gone already
        }
      }
  };
}

/** A command line as `virsh domxml-to-native` prints it: words, some in single quotes ('\'' inside). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated quote in ${line.slice(i, i + 40)}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (ch === '\\' && i + 1 < line.length) {
      word = (word ?? '') + line[++i];
    } else if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? '') + ch;
  }
  if (word !== undefined) words.push(word);
  return words;
}
