/** Questions at the user's terminal. */
import type { AskPassphrase } from '../installer/luks-key.js';
import { usageError } from '../util/errors.js';

/** Asks for a secret on the terminal without echoing it; undefined when stdin is not a terminal. */
export function terminalPassphrase(): AskPassphrase | undefined {
  const stdin = process.stdin;
  if (!stdin.isTTY) return undefined;
  return (prompt) =>
    new Promise((resolve, reject) => {
      process.stderr.write(prompt);
      let typed = '';
      const finish = (e?: Error) => {
        stdin.off('data', onData);
        stdin.setRawMode(false);
        stdin.pause();
        process.stderr.write('\n');
        if (e) reject(e);
        else resolve(typed);
      };
      const onData = (data: Buffer) => {
        for (const ch of data.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return finish();
          if (ch === '\u0003' || ch === '\u0004')
            return finish(usageError('no passphrase was typed; nothing was made'));
          typed = ch === '\u007f' || ch === '\b' ? typed.slice(0, -1) : typed + ch;
        }
      };
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', onData);
    });
}
