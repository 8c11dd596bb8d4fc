import { randomInt } from 'node:crypto';
import { connect } from 'node:net';
import { VmstubError, timeoutError } from '../util/errors.js';
import { QmpFramer } from './qmp.js';

/**
 * One command to the QEMU guest agent. The agent has no greeting and the channel may hold an answer
 * meant for an earlier client, so the exchange starts with guest-sync and a random id, and everything
 * before that id's echo is dropped.
 */
export function qgaExecute(
  socketPath: string,
  command: string,
  args?: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const framer = new QmpFramer();
    const syncId = randomInt(1, 2 ** 31);
    let synced = false;
    const finish = (err: Error | undefined, value?: unknown) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () =>
        finish(
          timeoutError(
            `the guest agent did not answer ${synced ? command : 'guest-sync'} within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
    sock.on('connect', () =>
      sock.write(JSON.stringify({ execute: 'guest-sync', arguments: { id: syncId } }) + '\n'),
    );
    sock.on('error', (e) =>
      finish(new VmstubError(`cannot reach the guest agent at ${socketPath}: ${e.message}`)),
    );
    sock.on('data', (chunk: Buffer) => {
      let messages;
      try {
        messages = framer.push(chunk);
      } catch {
        return; // a partial answer from before our sync: ignore it
      }
      for (const m of messages) {
        if (!synced) {
          if (m.kind === 'return' && m.value === syncId) {
            synced = true;
            const msg: Record<string, unknown> = { execute: command };
            if (args) msg.arguments = args;
            sock.write(JSON.stringify(msg) + '\n');
          }
          continue;
        }
        if (m.kind === 'return') return finish(undefined, m.value);
        if (m.kind === 'error') return finish(new VmstubError(`guest agent: ${m.errorClass}: ${m.desc}`));
      }
    });
  });
}

export interface GuestExecResult {
  exitcode: number;
  stdout: string;
  stderr: string;
}

/** Runs a program in the guest through the agent and waits for it. */
export async function guestExec(
  socketPath: string,
  path: string,
  argv: string[],
  timeoutMs = 60_000,
): Promise<GuestExecResult> {
  const started = (await qgaExecute(socketPath, 'guest-exec', {
    path,
    arg: argv,
    'capture-output': true,
  })) as { pid: number };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = (await qgaExecute(socketPath, 'guest-exec-status', { pid: started.pid })) as {
      exited: boolean;
      exitcode?: number;
      'out-data'?: string;
      'err-data'?: string;
    };
    if (st.exited) {
      const text = (b64?: string) => (b64 ? Buffer.from(b64, 'base64').toString('utf8') : '');
      return { exitcode: st.exitcode ?? -1, stdout: text(st['out-data']), stderr: text(st['err-data']) };
    }
    if (Date.now() > deadline)
      throw timeoutError(`${path} did not finish in the guest within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A file in the guest, read whole through the agent (procfs files too: their size says 0, reading works). */
export async function guestReadFile(socketPath: string, path: string, timeoutMs = 5000): Promise<Buffer> {
  const handle = (await qgaExecute(socketPath, 'guest-file-open', { path, mode: 'r' }, timeoutMs)) as number;
  try {
    const chunks: Buffer[] = [];
    for (let i = 0; i < 256; i++) {
      const r = (await qgaExecute(socketPath, 'guest-file-read', { handle, count: 65536 }, timeoutMs)) as {
        count: number;
        'buf-b64': string;
        eof: boolean;
      };
      chunks.push(Buffer.from(r['buf-b64'], 'base64'));
      if (r.eof || r.count === 0) break;
    }
    return Buffer.concat(chunks);
  } finally {
    await qgaExecute(socketPath, 'guest-file-close', { handle }, timeoutMs).catch(() => {});
  }
}
