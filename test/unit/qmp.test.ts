import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { QmpClient, QmpFramer, classifyQmp } from '../../src/vm/qmp.js';

test('framer: messages split anywhere, several per chunk, UTF-8 split mid-character', () => {
  const f = new QmpFramer();
  const text =
    '{"QMP": {"version": {}, "capabilities": []}}\r\n' +
    '{"event": "SHUTDOWN", "data": {"reason": "gúest"}}\r\n{"return": {}, "id": 1}\r\n';
  const bytes = Buffer.from(text);
  const split = text.indexOf('ú') + 1; // inside the two-byte character
  const out = [
    ...f.push(bytes.subarray(0, 10)),
    ...f.push(bytes.subarray(10, split)),
    ...f.push(bytes.subarray(split)),
  ];
  assert.deepEqual(
    out.map((m) => m.kind),
    ['greeting', 'event', 'return'],
  );
  assert.deepEqual(out[1], { kind: 'event', event: 'SHUTDOWN', data: { reason: 'gúest' } });
});

test('classify: an event is never a reply, errors carry class and description', () => {
  assert.equal(classifyQmp({ event: 'RESET', timestamp: {} }).kind, 'event');
  assert.deepEqual(classifyQmp({ error: { class: 'CommandNotFound', desc: 'nope' }, id: 3 }), {
    kind: 'error',
    id: 3,
    errorClass: 'CommandNotFound',
    desc: 'nope',
  });
  assert.throws(() => classifyQmp({ what: 1 }), /unexpected QMP message/);
  assert.throws(() => new QmpFramer().push(Buffer.from('not json\n')), /not JSON/);
});

/** A fake QMP server that answers each command after sending events and a stray reply to another id. */
async function fakeQmp(handler: (sock: Socket, cmd: { execute: string; id: number }) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'qmp-'));
  const path = join(dir, 'qmp.sock');
  const server = createServer((sock) => {
    sock.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\r\n');
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        handler(sock, JSON.parse(line));
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, close: () => (server.close(), rmSync(dir, { recursive: true, force: true })) };
}

test('client: events before and between replies do not answer commands', async () => {
  const server = await fakeQmp((sock, cmd) => {
    if (cmd.execute === 'qmp_capabilities') {
      sock.write(`{"return": {}, "id": ${cmd.id}}\r\n`);
      return;
    }
    sock.write('{"event": "POWERDOWN", "data": {}}\r\n');
    sock.write(`{"return": {"stray": true}, "id": 999}\r\n`);
    // the real answer arrives in two pieces, after another event
    const answer = `{"event": "RESET", "data": {}}\r\n{"return": {"status": "running"}, "id": ${cmd.id}}\r\n`;
    sock.write(answer.slice(0, 25));
    setTimeout(() => sock.write(answer.slice(25)), 20);
  });
  const client = await QmpClient.connect(server.path);
  const events: string[] = [];
  client.onEvent((e) => events.push(e));
  const result = await client.execute('query-status');
  assert.deepEqual(result, { status: 'running' });
  assert.deepEqual(events, ['POWERDOWN', 'RESET']);
  client.close();
  server.close();
});

test('client: QMP errors reject with their class; silence times out', async () => {
  const server = await fakeQmp((sock, cmd) => {
    if (cmd.execute === 'qmp_capabilities') sock.write(`{"return": {}, "id": ${cmd.id}}\r\n`);
    else if (cmd.execute === 'bad')
      sock.write(`{"error": {"class": "CommandNotFound", "desc": "no bad"}, "id": ${cmd.id}}\r\n`);
    // 'silent' gets no answer
  });
  const client = await QmpClient.connect(server.path);
  await assert.rejects(client.execute('bad'), /QMP CommandNotFound: no bad/);
  await assert.rejects(client.execute('silent', undefined, 200), /got no answer within 200 ms/);
  client.close();
  await assert.rejects(client.execute('after-close'), /closed/);
  server.close();
});

test('client: a socket nobody listens on is a clear error', async () => {
  await assert.rejects(QmpClient.connect('/nonexistent/qmp.sock', 500), /cannot connect to QMP/);
});
