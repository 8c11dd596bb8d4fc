import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { guestExec, qgaExecute } from '../../src/vm/qga.js';

/** A fake agent: first replays a stale answer meant for someone else, then answers honestly. */
async function fakeAgent(answer: (cmd: { execute: string; arguments?: Record<string, unknown> }) => unknown) {
  const path = join(mkdtempSync(join(tmpdir(), 'qga-')), 'qga.sock');
  const server = createServer((sock) => {
    sock.write('{"return": {"stale": true}}\n{"return": 7}\n');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (cmd.execute === 'guest-sync') sock.write(JSON.stringify({ return: cmd.arguments.id }) + '\n');
        else sock.write(JSON.stringify(answer(cmd)) + '\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, close: () => server.close() };
}

test('agent commands: stale output before the sync is not taken for the answer', async () => {
  const agent = await fakeAgent((cmd) =>
    cmd.execute === 'guest-ping' ? { return: {} } : { error: { class: 'CommandNotFound', desc: 'nope' } },
  );
  assert.deepEqual(await qgaExecute(agent.path, 'guest-ping'), {});
  await assert.rejects(qgaExecute(agent.path, 'guest-bogus'), /guest agent: CommandNotFound: nope/);
  agent.close();
});

test('guest-exec: waits for exit, decodes output', async () => {
  let polls = 0;
  const agent = await fakeAgent((cmd) => {
    if (cmd.execute === 'guest-exec') return { return: { pid: 42 } };
    polls++;
    return polls < 3
      ? { return: { exited: false } }
      : { return: { exited: true, exitcode: 3, 'out-data': Buffer.from('hello\n').toString('base64') } };
  });
  assert.deepEqual(await guestExec(agent.path, '/bin/echo', ['hello']), {
    exitcode: 3,
    stdout: 'hello\n',
    stderr: '',
  });
  agent.close();
});

test('an agent that never answers times out', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'qga-')), 'qga.sock');
  const server = createServer(() => {});
  await new Promise<void>((r) => server.listen(path, r));
  await assert.rejects(
    qgaExecute(path, 'guest-ping', undefined, 300),
    /did not answer guest-sync within 300 ms/,
  );
  server.close();
});
