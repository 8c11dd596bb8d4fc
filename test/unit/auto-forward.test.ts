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
    release: [],
  });
  assert.deepEqual(autoForwardChanges([], new Set([8080]), new Set()), {
    add: [],
    remove: [8080],
    release: [],
  });
});

test('recorded forwards: their guest and host ports are left to them, a port they took over is released', () => {
  const listeners = [8080, 3000, 9000, 5000].map((port) => ({ address: '0.0.0.0', port }));
  const tcp = (hostPort: number, guestPort: number, hostAddr = '127.0.0.1') =>
    ({ protocol: 'tcp', hostAddr, hostPort, guestPort }) as const;
  const recorded = [
    tcp(8080, 8080), // port add 8080:8080 while auto-forward held 8080: taken over, not removed
    tcp(3000, 80, '0.0.0.0'), // host port 3000 is the recorded forward's, whatever its address
    tcp(2222, 9000), // guest port 9000 is forwarded already, from another host port
    { protocol: 'udp', hostAddr: '127.0.0.1', hostPort: 5000, guestPort: 5000 } as const,
  ];
  assert.deepEqual(autoForwardChanges(listeners, new Set([8080, 9000]), new Set(), recorded), {
    add: [5000], // a UDP forward on 5000 leaves its TCP side to auto-forward
    remove: [9000],
    release: [8080],
  });
});
