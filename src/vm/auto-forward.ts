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

/** What to add and remove so that the forwarded ports are the reachable listening ones, less `skip`. */
export function autoForwardChanges(
  listeners: readonly Listener[],
  forwarded: ReadonlySet<number>,
  skip: ReadonlySet<number>,
): { add: number[]; remove: number[] } {
  const wanted = new Set(listeners.filter(reachableFromHost).map((l) => l.port));
  for (const p of skip) wanted.delete(p);
  return {
    add: [...wanted].filter((p) => !forwarded.has(p)).sort((a, b) => a - b),
    remove: [...forwarded].filter((p) => !wanted.has(p)).sort((a, b) => a - b),
  };
}

const forward = (port: number): HostFwd => ({
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
      /** Guest ports never forwarded automatically (its sshd, LLMNR, the recorded forwards'). */
      skip: ReadonlySet<number>;
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
    const { add, remove } = autoForwardChanges(
      listeners,
      this.forwarded,
      new Set([...this.o.skip, ...this.refused]),
    );
    for (const port of remove) {
      await removeLiveForward(this.o.qmp, this.o.netdev, forward(port)).catch(() => false);
      this.forwarded.delete(port);
      this.o.log(`auto-forward: 127.0.0.1:${port} removed (the guest stopped listening)`);
    }
    for (const port of add) {
      try {
        await addLiveForward(this.o.qmp, this.o.netdev, forward(port));
        this.forwarded.add(port);
        this.o.log(`auto-forward: 127.0.0.1:${port} -> ${port}/tcp (the guest listens on it)`);
      } catch (e) {
        this.refused.add(port);
        this.o.log(`auto-forward: not ${port}: ${oneLine(e)}`);
      }
    }
    if (add.length || remove.length) this.save();
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
