import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHostFwd, macFor, parseHostFwd, parseNet } from '../../src/vm/network.js';
import { checkNewForward, parseHostSide } from '../../src/vm/port-forwards.js';

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

test('port rm takes the host side of a forward, alone or in a whole forward', () => {
  assert.deepEqual(parseHostSide('8080'), { protocol: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080 });
  assert.deepEqual(parseHostSide('0.0.0.0:53/udp'), { protocol: 'udp', hostAddr: '0.0.0.0', hostPort: 53 });
  assert.deepEqual(parseHostSide('8080:80'), { protocol: 'tcp', hostAddr: '127.0.0.1', hostPort: 8080 });
  assert.throws(() => parseHostSide('99999'), /port rm '99999': '99999' is not a port$/);
  assert.throws(
    () => parseHostSide('1.2.3.999:80'),
    /port rm '1\.2\.3\.999:80': '1\.2\.3\.999' is not an IPv4 address/,
  );
  assert.throws(() => parseHostSide('web'), /port rm 'web' is not HOSTPORT:GUESTPORT/);
});

test('a new forward clashing with a recorded one, or with the SSH port, is refused', () => {
  const recorded = [parseHostFwd('8080:80')];
  assert.throws(
    () => checkNewForward(recorded, parseHostFwd('8080:81'), 2222),
    /host port 8080\/tcp is forwarded already \(127\.0\.0\.1:8080 -> 80\/tcp\)/,
  );
  assert.throws(
    () => checkNewForward(recorded, parseHostFwd('2222:22'), 2222),
    /host port 2222 is this instance's SSH forward/,
  );
  checkNewForward(recorded, parseHostFwd('8080:80/udp'), 2222);
  checkNewForward(recorded, parseHostFwd('127.0.0.2:8080:80'), 2222);
});
