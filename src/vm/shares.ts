import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { VmstubError } from '../util/errors.js';
import { runSync, which } from '../util/exec.js';
import { isRoot } from '../util/paths.js';
import type { ShareMode } from './qemu-argv.js';

export interface Virtiofsd {
  path: string;
  /** The Rust daemon takes --shared-dir; QEMU's older C daemon takes -o source=. */
  flavour: 'rust' | 'legacy';
}

const VIRTIOFSD_LOCATIONS = ['/usr/libexec/virtiofsd', '/usr/lib/qemu/virtiofsd', '/usr/lib/virtiofsd'];

export function findVirtiofsd(): Virtiofsd | undefined {
  const path = which('virtiofsd') ?? VIRTIOFSD_LOCATIONS.find((p) => existsSync(p));
  if (!path) return undefined;
  const help = runSync(path, ['--help']);
  return { path, flavour: `${help.stdout}${help.stderr}`.includes('--shared-dir') ? 'rust' : 'legacy' };
}

/** virtiofs needs virtiofsd and, for the C daemon, root; otherwise shares fall back to 9p. */
export function chooseShareMode(daemon: Virtiofsd | undefined): { mode: ShareMode; why?: string } {
  if (!daemon) return { mode: '9p', why: 'virtiofsd not found' };
  if (!isRoot() && daemon.flavour === 'legacy') return { mode: '9p', why: 'this virtiofsd needs root' };
  return { mode: 'virtiofs' };
}

export function virtiofsdArgs(daemon: Virtiofsd, dir: string, socket: string): string[] {
  return daemon.flavour === 'rust'
    ? ['--socket-path', socket, '--shared-dir', dir, '--cache', 'auto', '--xattr', '--announce-submounts']
    : [`--socket-path=${socket}`, '-o', `source=${dir}`, '-o', 'cache=auto', '-o', 'xattr'];
}

/** Starts virtiofsd for one share and waits (up to 10 s) until its socket exists. */
export async function startVirtiofsd(
  daemon: Virtiofsd,
  dir: string,
  socket: string,
  logFile: string,
): Promise<ChildProcess> {
  const log = openSync(logFile, 'a', 0o600);
  // Detached: it outlives the starting command and its terminal, and the supervisor ends it with the VM.
  const child = spawn(daemon.path, virtiofsdArgs(daemon, dir, socket), {
    stdio: ['ignore', log, log],
    detached: true,
  });
  closeSync(log);
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = signal ?? String(code)));
  for (let i = 0; i < 100; i++) {
    if (existsSync(socket)) return child;
    if (exited !== undefined) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new VmstubError(
    `virtiofsd for ${dir} ${exited ? `exited (${exited})` : 'did not create its socket in 10 s'}; see ${logFile}`,
  );
}
