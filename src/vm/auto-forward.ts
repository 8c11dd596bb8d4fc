/**
 * Forwards without thinking (`--auto-forward`): the supervisor asks the guest agent every few seconds
 * which TCP ports the guest listens on (its /proc/net/tcp and tcp6, read as files: no guest-exec),
 * and forwards each from the same port on the host's 127.0.0.1, taking the forward away when the guest
 * stops listening. Only what user-mode networking can reach: wildcard and non-loopback addresses.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { oneLine } from '../util/errors.js';
import type { HostFwd } from './definition.js';
import { addLiveForward, removeLiveForward } from './port-forwards.js';
import { guestReadFile } from './qga.js';

export interface Listener {
  address: string;
  port: number;
}

/** TCP state LISTEN in /proc/net/tcp. */
const LISTEN = '0A';

/** An address as /proc/net/tcp{,6} writes it: 32-bit words in hex, each in the host's (little-endian) order. */
function decodeAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
    return `::ffff:${bytes.slice(12).join('.')}`;
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** The listening sockets in the text of /proc/net/tcp or /proc/net/tcp6. */
export function listeningSockets(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== LISTEN || !local?.includes(':')) continue;
    const [addr, port] = local.split(':');
    out.push({ address: decodeAddress(addr!), port: parseInt(port!, 16) });
  }
  return out;
}

/** Whether a forward from the host reaches it: QEMU's user network connects to the guest's own address. */
export const reachableFromHost = (l: Listener): boolean =>
  !/^(127\.|::ffff:127\.)/.test(l.address) && l.address !== '::1';

/**
 * What to add and remove so that the forwarded ports are the reachable listening ones, less `skip`
 * and less what the recorded forwards (run --hostfwd, port add) have: their guest ports, and their
 * host ports. A port that a recorded forward has taken over from us (`port add` while we held it) is
 * released: dropped from our record and left in QEMU, where it is now the recorded forward.
 */
export function autoForwardChanges(
  listeners: readonly Listener[],
  forwarded: ReadonlySet<number>,
  skip: ReadonlySet<number>,
  recorded: readonly HostFwd[] = [],
): { add: number[]; remove: number[]; release: number[] } {
  const tcp = recorded.filter((f) => f.protocol === 'tcp');
  const claimed = new Set(tcp.map((f) => f.hostPort));
  const wanted = new Set(listeners.filter(reachableFromHost).map((l) => l.port));
  for (const p of [...skip, ...claimed, ...tcp.map((f) => f.guestPort)]) wanted.delete(p);
  const ascending = (ports: number[]) => ports.sort((a, b) => a - b);
  return {
    add: ascending([...wanted].filter((p) => !forwarded.has(p))),
    remove: ascending([...forwarded].filter((p) => !wanted.has(p) && !claimed.has(p))),
    release: ascending([...forwarded].filter((p) => claimed.has(p))),
  };
}

/** The forward --auto-forward makes for a guest port: the same port on the host's loopback. */
export const autoForward = (port: number): HostFwd => ({
  protocol: 'tcp',
  hostAddr: '127.0.0.1',
  hostPort: port,
  guestPort: port,
});

/** The guest ports forwarded automatically now (the supervisor's record); none when it keeps none. */
export function readAutoForwards(stateFile: string): number[] {
  try {
    return JSON.parse(readFileSync(stateFile, 'utf8')) as number[];
  } catch {
    return [];
  }
}

/** One instance's automatic forwards, kept by its supervisor. */
export class AutoForwarder {
  private readonly forwarded = new Set<number>();
  /** Ports whose host side could not be had (in use): tried again only once the guest stops listening. */
  private readonly refused = new Set<number>();

  constructor(
    private readonly o: {
      qga: string;
      qmp: string;
      netdev: string;
      /** Guest ports never forwarded automatically (its sshd, LLMNR). */
      skip: ReadonlySet<number>;
      /** The instance's recorded forwards as they are now: `port add` can change them while it runs. */
      recorded: () => readonly HostFwd[];
      stateFile: string;
      log: (line: string) => void;
    },
  ) {}

  /** A new QEMU (the direct boot) has none of the old one's forwards. */
  reset(): void {
    this.forwarded.clear();
    this.refused.clear();
    this.save();
  }

  /** One look at the guest; an agent that does not answer (not started yet, or none) changes nothing. */
  async tick(): Promise<void> {
    // One after the other: the agent's channel takes one client at a time.
    const v4 = await this.read('/proc/net/tcp');
    if (v4 === undefined) return;
    const v6 = await this.read('/proc/net/tcp6');
    const listeners = [...listeningSockets(v4), ...listeningSockets(v6 ?? '')];
    const listening = new Set(listeners.map((l) => l.port));
    for (const p of this.refused) if (!listening.has(p)) this.refused.delete(p);
    const { add, remove, release } = autoForwardChanges(
      listeners,
      this.forwarded,
      new Set([...this.o.skip, ...this.refused]),
      this.o.recorded(),
    );
    for (const port of release) {
      this.forwarded.delete(port);
      this.o.log(`auto-forward: host port ${port} is a recorded forward now (port add)`);
    }
    for (const port of remove) {
      await removeLiveForward(this.o.qmp, this.o.netdev, autoForward(port)).catch(() => false);
      this.forwarded.delete(port);
      this.o.log(`auto-forward: 127.0.0.1:${port} removed (the guest stopped listening)`);
    }
    for (const port of add) {
      try {
        await addLiveForward(this.o.qmp, this.o.netdev, autoForward(port));
        this.forwarded.add(port);
        this.o.log(`auto-forward: 127.0.0.1:${port} -> ${port}/tcp (the guest listens on it)`);
      } catch (e) {
        this.refused.add(port);
        this.o.log(`auto-forward: not ${port}: ${oneLine(e)}`);
      }
    }
    if (add.length || remove.length || release.length) this.save();
  }

  /** A file of the guest's, or undefined when the agent does not answer: never a rejection. */
  private read(file: string): Promise<string | undefined> {
    return guestReadFile(this.o.qga, file, 2000).then(
      (b) => b.toString('latin1'),
      () => undefined,
    );
  }

  private save(): void {
    writeFileSync(this.o.stateFile, JSON.stringify([...this.forwarded].sort((a, b) => a - b)) + '\n');
  }
}
