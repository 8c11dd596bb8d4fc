import { createHash } from 'node:crypto';
import { usageError } from '../util/errors.js';
import type { HostFwd, NetSpec } from './definition.js';

/** `user`, `bridge:BR` or `tap:IF`. */
export function parseNet(text: string): NetSpec {
  if (text === 'user') return { kind: 'user' };
  const m = /^(bridge|tap):([A-Za-z0-9_.-]{1,15})$/.exec(text);
  if (!m) throw usageError(`--net '${text}' is not user, bridge:BRIDGE or tap:INTERFACE`);
  return m[1] === 'bridge' ? { kind: 'bridge', bridge: m[2]! } : { kind: 'tap', ifname: m[2]! };
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function port(text: string, spec: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535)
    throw usageError(`${what} '${spec}': '${text}' is not a port`);
  return n;
}

export function address(text: string, spec: string, what: string): string {
  const m = IPV4_RE.exec(text);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) {
    throw usageError(`${what} '${spec}': '${text}' is not an IPv4 address`);
  }
  return text;
}

/**
 * Port forwards in Docker's form, `[ADDR:]HOSTPORT:GUESTPORT[/udp]`, or QEMU's,
 * `tcp|udp:[ADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`. The host side defaults to 127.0.0.1: a forward
 * reachable from other machines must be asked for by address.
 */
export function parseHostFwd(spec: string, what = '--hostfwd'): HostFwd {
  const qemu = /^(tcp|udp):([^:]*):(\d+)-([^:]*):(\d+)$/.exec(spec);
  if (qemu) {
    if (qemu[4])
      throw usageError(
        `${what} '${spec}': a guest address is not supported; vmstub forwards to the guest's own address`,
      );
    return {
      protocol: qemu[1] as 'tcp' | 'udp',
      hostAddr: qemu[2] ? address(qemu[2], spec, what) : '127.0.0.1',
      hostPort: port(qemu[3]!, spec, what),
      guestPort: port(qemu[5]!, spec, what),
    };
  }
  const docker = /^(?:([0-9.]+):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec);
  if (docker) {
    return {
      protocol: (docker[4] as 'tcp' | 'udp' | undefined) ?? 'tcp',
      hostAddr: docker[1] ? address(docker[1], spec, what) : '127.0.0.1',
      hostPort: port(docker[2]!, spec, what),
      guestPort: port(docker[3]!, spec, what),
    };
  }
  throw usageError(
    `${what} '${spec}' is not HOSTPORT:GUESTPORT, ADDR:HOSTPORT:GUESTPORT[/udp] or tcp:ADDR:HOSTPORT-:GUESTPORT`,
  );
}

export function formatHostFwd(f: HostFwd): string {
  return `${f.protocol}:${f.hostAddr}:${f.hostPort}-:${f.guestPort}`;
}

/** A stable, locally administered MAC per instance and NIC, in QEMU's 52:54:00 range. */
export function macFor(name: string, index: number): string {
  const h = createHash('sha256').update(`${name}/${index}`).digest();
  return ['52', '54', '00', ...[h[0]!, h[1]!, h[2]!].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}
