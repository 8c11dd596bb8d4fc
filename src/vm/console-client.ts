import { connect } from 'node:net';
import { VmstubError } from '../util/errors.js';

export const DETACH_BYTE = 0x1d; // Ctrl-]

/**
 * Connects the terminal (or any stdin/stdout) to a console socket. On a TTY the terminal is raw, so
 * Ctrl-C reaches the guest; Ctrl-] detaches. Resolves 'closed' when the VM goes away.
 */
export function attachConsole(
  socketPath: string,
  io: { input: NodeJS.ReadStream; output: NodeJS.WritableStream } = {
    input: process.stdin,
    output: process.stdout,
  },
): Promise<'detached' | 'closed'> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    const tty = io.input.isTTY === true;
    let settled = false;
    const finish = (how: 'detached' | 'closed') => {
      if (settled) return;
      settled = true;
      io.input.off('data', onInput);
      if (tty) io.input.setRawMode(false);
      // A paused pipe still holds the event loop open; nothing reads this input after detaching.
      if (tty) io.input.pause();
      else io.input.destroy();
      sock.destroy();
      resolve(how);
    };
    const onInput = (d: Buffer) => {
      const at = d.indexOf(DETACH_BYTE);
      if (at >= 0) {
        if (at > 0) sock.write(d.subarray(0, at));
        finish('detached');
        return;
      }
      sock.write(d);
    };
    sock.once('connect', () => {
      if (tty) io.input.setRawMode(true);
      io.input.on('data', onInput);
      io.input.resume();
    });
    sock.on('data', (d: Buffer) => io.output.write(d));
    sock.on('close', () => finish('closed'));
    sock.on('error', (e) => {
      if (settled) return;
      settled = true;
      reject(new VmstubError(`cannot attach to the console at ${socketPath}: ${e.message}`));
    });
  });
}
