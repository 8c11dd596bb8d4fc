import { connect, type Socket } from 'node:net';
import { VmstubError, timeoutError } from '../util/errors.js';

export type QmpMessage =
  | { kind: 'greeting'; body: Record<string, unknown> }
  | { kind: 'return'; id: unknown; value: unknown }
  | { kind: 'error'; id: unknown; errorClass: string; desc: string }
  | { kind: 'event'; event: string; data: unknown };

/** Classifies one QMP JSON object. Anything with "event" is an event, never a reply. */
export function classifyQmp(obj: Record<string, unknown>): QmpMessage {
  if ('event' in obj) return { kind: 'event', event: String(obj.event), data: obj.data };
  if ('QMP' in obj) return { kind: 'greeting', body: obj };
  if ('error' in obj) {
    const e = (obj.error ?? {}) as { class?: string; desc?: string };
    return {
      kind: 'error',
      id: obj.id,
      errorClass: e.class ?? 'GenericError',
      desc: e.desc ?? 'unknown error',
    };
  }
  if ('return' in obj) return { kind: 'return', id: obj.id, value: obj.return };
  throw new VmstubError(`unexpected QMP message: ${JSON.stringify(obj).slice(0, 200)}`);
}

/**
 * Splits a QMP byte stream into messages. QMP ends every message with CRLF; chunks may split a
 * message anywhere, including inside a multi-byte UTF-8 character, or carry several at once.
 */
export class QmpFramer {
  private pending = Buffer.alloc(0);

  push(chunk: Buffer): QmpMessage[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const out: QmpMessage[] = [];
    let nl: number;
    while ((nl = this.pending.indexOf(0x0a)) >= 0) {
      const line = this.pending.subarray(0, nl).toString('utf8').trim();
      this.pending = this.pending.subarray(nl + 1);
      if (!line) continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        throw new VmstubError(`QMP sent something that is not JSON: ${line.slice(0, 120)}`);
      }
      out.push(classifyQmp(obj as Record<string, unknown>));
    }
    return out;
  }
}

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A QMP client: replies are matched to commands by id; events go to listeners and never answer a command. */
export class QmpClient {
  private readonly framer = new QmpFramer();
  private readonly waiters = new Map<number, Waiter>();
  private readonly eventListeners: ((event: string, data: unknown) => void)[] = [];
  private readonly closeListeners: (() => void)[] = [];
  private nextId = 1;
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {}

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = connect(path);
    const client = new QmpClient(socket);
    const greeting = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(timeoutError(`QMP at ${path} did not greet within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(new VmstubError(`cannot connect to QMP at ${path}: ${e.message}`));
      });
      client.onGreeting = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    socket.on('data', (chunk: Buffer) => client.receive(chunk));
    socket.on('close', () => {
      client.failAll(new VmstubError('QMP connection closed'));
      for (const l of client.closeListeners) l();
    });
    socket.on('error', (e) => client.failAll(new VmstubError(`QMP connection failed: ${e.message}`)));
    await greeting;
    await client.execute('qmp_capabilities', undefined, timeoutMs);
    return client;
  }

  private onGreeting: () => void = () => {};

  private receive(chunk: Buffer): void {
    let messages: QmpMessage[];
    try {
      messages = this.framer.push(chunk);
    } catch (e) {
      this.failAll(e as Error);
      this.socket.destroy();
      return;
    }
    for (const m of messages) {
      if (m.kind === 'greeting') this.onGreeting();
      else if (m.kind === 'event') for (const l of this.eventListeners) l(m.event, m.data);
      else {
        const waiter = typeof m.id === 'number' ? this.waiters.get(m.id) : undefined;
        if (!waiter) continue; // a reply to nobody (e.g. a timed-out command): drop it
        this.waiters.delete(m.id as number);
        clearTimeout(waiter.timer);
        if (m.kind === 'return') waiter.resolve(m.value);
        else waiter.reject(new VmstubError(`QMP ${m.errorClass}: ${m.desc}`));
      }
    }
  }

  private failAll(err: Error): void {
    this.closedError ??= err;
    for (const [id, w] of this.waiters) {
      clearTimeout(w.timer);
      this.waiters.delete(id);
      w.reject(err);
    }
  }

  onEvent(listener: (event: string, data: unknown) => void): void {
    this.eventListeners.push(listener);
  }

  /** Called once the connection is gone (for QEMU's own monitor: QEMU has exited). */
  onClose(listener: () => void): void {
    if (this.socket.destroyed) listener();
    else this.closeListeners.push(listener);
  }

  execute(command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(timeoutError(`QMP command ${command} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, { resolve, reject, timer });
      const msg: Record<string, unknown> = { execute: command, id };
      if (args) msg.arguments = args;
      this.socket.write(JSON.stringify(msg) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One command on a fresh connection: QEMU serves one QMP client at a time, so nobody holds it open. */
export async function qmpOnce(
  path: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 5000,
): Promise<unknown> {
  const client = await QmpClient.connect(path, timeoutMs);
  try {
    return await client.execute(command, args, timeoutMs);
  } finally {
    client.close();
  }
}
