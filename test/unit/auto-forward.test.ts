import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { test } from 'node:test';
import { autoForwardChanges, listeningSockets, reachableFromHost } from '../../src/vm/auto-forward.js';

const listen = (host: string) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => resolve(s));
  });

test("listening sockets as this machine's own /proc/net/tcp and tcp6 show them: wildcard, loopback, IPv6", async (t) => {
  const wildcard = await listen('0.0.0.0');
  const loopback = await listen('127.0.0.1');
  const v6 = await listen('::').catch(() => undefined);
  // A connected socket (the client's end of a connection) is not listening: it must not be taken.
  const client = connect((wildcard.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  t.after(() => {
    client.destroy();
    [wildcard, loopback, v6].forEach((s) => s?.close());
  });
  const sockets = [
    ...listeningSockets(readFileSync('/proc/net/tcp', 'latin1')),
    ...listeningSockets(readFileSync('/proc/net/tcp6', 'latin1')),
  ];
  const find = (s: Server) => sockets.find((l) => l.port === (s.address() as AddressInfo).port);
  assert.deepEqual(find(wildcard), { address: '0.0.0.0', port: (wildcard.address() as AddressInfo).port });
  assert.deepEqual(find(loopback), { address: '127.0.0.1', port: (loopback.address() as AddressInfo).port });
  assert.ok(reachableFromHost(find(wildcard)!));
  assert.ok(!reachableFromHost(find(loopback)!), 'user-mode networking cannot reach the guest loopback');
  if (v6) {
    assert.equal(find(v6)?.address, '::');
    assert.ok(reachableFromHost(find(v6)!));
  }
  assert.ok(!sockets.some((l) => l.port === client.localPort), 'a connected socket is not a listener');
});

test('the changes: new reachable listeners added, gone ones removed, skipped and loopback ones left', () => {
  const listeners = [
    { address: '0.0.0.0', port: 8080 },
    { address: '::', port: 3000 },
    { address: '127.0.0.1', port: 5432 },
    { address: '::1', port: 6379 },
    { address: '0.0.0.0', port: 22 },
    { address: '10.0.2.15', port: 9000 },
  ];
  assert.deepEqual(autoForwardChanges(listeners, new Set([8080, 4000]), new Set([22])), {
    add: [3000, 9000],
    remove: [4000],
  });
  assert.deepEqual(autoForwardChanges([], new Set([8080]), new Set()), { add: [], remove: [8080] });
});
