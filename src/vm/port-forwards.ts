/**
 * Port forwards on a running VM's user-mode network, through QEMU's monitor (QMP has no hostfwd
 * command of its own: human-monitor-command carries HMP's hostfwd_add, hostfwd_remove, info usernet).
 */
import { usageError, VmstubError } from '../util/errors.js';
import type { HostFwd } from './definition.js';
import { address, formatHostFwd, parseHostFwd, port } from './network.js';
import { qmpOnce } from './qmp.js';

/** What identifies a forward: its protocol and host side (QEMU's hostfwd_remove takes just that). */
export type HostSide = Pick<HostFwd, 'protocol' | 'hostAddr' | 'hostPort'>;

export const sameHostSide = (a: HostSide, b: HostSide): boolean =>
  a.protocol === b.protocol && a.hostAddr === b.hostAddr && a.hostPort === b.hostPort;

/** `[ADDR:]HOSTPORT[/udp]`, or a whole forward (its guest port is then ignored). */
export function parseHostSide(spec: string, what = 'port rm'): HostSide {
  const m = /^(?:(\d+\.\d+\.\d+\.\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  if (!m) {
    const f = parseHostFwd(spec, what);
    return { protocol: f.protocol, hostAddr: f.hostAddr, hostPort: f.hostPort };
  }
  return {
    protocol: (m[3] as 'tcp' | 'udp' | undefined) ?? 'tcp',
    hostAddr: m[1] ? address(m[1], spec, what) : '127.0.0.1',
    hostPort: port(m[2]!, spec, what),
  };
}

export const formatHostSide = (f: HostSide): string => `${f.protocol}:${f.hostAddr}:${f.hostPort}`;

/** A forward as a user writes it: 127.0.0.1:8080 -> 80/tcp. */
export const describeForward = (f: HostFwd): string =>
  `${f.hostAddr}:${f.hostPort} -> ${f.guestPort}/${f.protocol}`;

/**
 * The forwards QEMU has now, from `info usernet`: its HOST_FORWARD rows, e.g.
 * `  TCP[HOST_FORWARD]  13       127.0.0.1  8080       10.0.2.15    80     0     0`.
 */
export function parseUsernet(text: string): HostFwd[] {
  const forwards: HostFwd[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(TCP|UDP)\[HOST_FORWARD\]\s+-?\d+\s+(\S+)\s+(\d+)\s+\S+\s+(\d+)\b/.exec(line);
    if (m)
      forwards.push({
        protocol: m[1]!.toLowerCase() as 'tcp' | 'udp',
        hostAddr: m[2] === '*' ? '0.0.0.0' : m[2]!,
        hostPort: Number(m[3]),
        guestPort: Number(m[4]),
      });
  }
  return forwards;
}

const hmp = async (qmpSocket: string, commandLine: string): Promise<string> =>
  String(await qmpOnce(qmpSocket, 'human-monitor-command', { 'command-line': commandLine }));

export async function liveForwards(qmpSocket: string): Promise<HostFwd[]> {
  return parseUsernet(await hmp(qmpSocket, 'info usernet'));
}

/** Adds a forward to the running QEMU; QEMU's refusal (the port is taken) becomes one line. */
export async function addLiveForward(qmpSocket: string, netdev: string, f: HostFwd): Promise<void> {
  const out = (await hmp(qmpSocket, `hostfwd_add ${netdev} ${formatHostFwd(f)}`)).trim();
  if (out)
    throw new VmstubError(
      /could not set up host forwarding rule/i.test(out)
        ? `cannot forward ${describeForward(f)}: host port ${f.hostPort} is in use (or not allowed)`
        : `cannot forward ${describeForward(f)}: ${out.split('\n')[0]}`,
    );
}

/** Removes a forward from the running QEMU; false when QEMU had no such rule. */
export async function removeLiveForward(qmpSocket: string, netdev: string, f: HostSide): Promise<boolean> {
  const out = await hmp(qmpSocket, `hostfwd_remove ${netdev} ${formatHostSide(f)}`);
  if (/removed/.test(out)) return true;
  if (/not found/.test(out)) return false;
  throw new VmstubError(`cannot remove the forward ${formatHostSide(f)}: ${out.trim().split('\n')[0]}`);
}

/** The refusals that need no VM: a forward clashing with one the instance has (or with its SSH port). */
export function checkNewForward(existing: HostFwd[], f: HostFwd, sshPort: number | undefined): void {
  const clash = existing.find((e) => sameHostSide(e, f));
  if (clash)
    throw usageError(
      `host port ${f.hostPort}/${f.protocol} is forwarded already (${describeForward(clash)})`,
    );
  if (f.protocol === 'tcp' && f.hostPort === sshPort && ['127.0.0.1', '0.0.0.0'].includes(f.hostAddr))
    throw usageError(`host port ${f.hostPort} is this instance's SSH forward`);
}
