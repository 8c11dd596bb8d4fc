import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHostFwd, macFor, parseHostFwd, parseNet } from '../../src/vm/network.js';

test('hostfwd in Docker and QEMU forms; loopback unless an address is given', () => {
  const cases: [string, string][] = [
    ['8080:80', 'tcp:127.0.0.1:8080-:80'],
    ['5353:53/udp', 'udp:127.0.0.1:5353-:53'],
    ['0.0.0.0:2222:22', 'tcp:0.0.0.0:2222-:22'],
    ['tcp::8080-:80', 'tcp:127.0.0.1:8080-:80'],
    ['udp:192.168.1.2:53-:53', 'udp:192.168.1.2:53-:53'],
  ];
  for (const [spec, qemu] of cases) assert.equal(formatHostFwd(parseHostFwd(spec)), qemu, spec);
});

test('bad hostfwd specs are refused', () => {
  for (const bad of [
    '80',
    '99999:80',
    '8080:0',
    'a:b',
    '300.1.1.1:80:80',
    'tcp::80-10.0.2.15:80',
    '8080:80/sctp',
    '8080,x:80',
  ]) {
    assert.throws(() => parseHostFwd(bad), /--hostfwd/, bad);
  }
});

test('nets', () => {
  assert.deepEqual(parseNet('user'), { kind: 'user' });
  assert.deepEqual(parseNet('bridge:br0'), { kind: 'bridge', bridge: 'br0' });
  assert.deepEqual(parseNet('tap:tap3'), { kind: 'tap', ifname: 'tap3' });
  for (const bad of ['br0', 'bridge:', 'tap:a,b', 'vde:x', 'bridge:waytoolonginterfacename']) {
    assert.throws(() => parseNet(bad), /--net/, bad);
  }
});

test('MACs are stable per name and NIC, locally administered, and differ between VMs', () => {
  assert.equal(macFor('web1', 0), macFor('web1', 0));
  assert.notEqual(macFor('web1', 0), macFor('web1', 1));
  assert.notEqual(macFor('web1', 0), macFor('web2', 0));
  assert.match(macFor('web1', 0), /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
});
