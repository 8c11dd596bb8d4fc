// Live port forwards through QEMU's monitor, against a real QEMU with a user-mode network and no guest
// (`-machine none`): what `vmstub port` does to a running VM, without waiting for one to boot.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/cli.js';
import { freeLoopbackPort } from '../../src/vm/ports.js';
import { addLiveForward, liveForwards, removeLiveForward } from '../../src/vm/port-forwards.js';
import { parseHostFwd } from '../../src/vm/network.js';

let qemu: ChildProcess;
let dir: string;
let qmp: string;
let sshPort: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'port-forwards-'));
  qmp = join(dir, 'qmp.sock');
  sshPort = await freeLoopbackPort();
  // prettier-ignore
  qemu = spawn('qemu-system-x86_64', [
    '-machine', 'none', '-nodefaults', '-display', 'none',
    '-netdev', `user,id=net0,hostfwd=tcp:127.0.0.1:${sshPort}-:22,hostfwd=udp::${sshPort}-:53`,
    '-qmp', `unix:${qmp},server=on,wait=off`,
  ], { stdio: 'ignore' });
  await waitFor('the QMP socket', () => existsSync(qmp), 10_000);
});

after(() => {
  qemu.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('info usernet: the forwards QEMU was started with, TCP and UDP, any address as 0.0.0.0', async () => {
  assert.deepEqual(await liveForwards(qmp), [
    { protocol: 'tcp', hostAddr: '127.0.0.1', hostPort: sshPort, guestPort: 22 },
    { protocol: 'udp', hostAddr: '0.0.0.0', hostPort: sshPort, guestPort: 53 },
  ]);
});

test('a forward added live listens on the host at once, and is gone when removed', async () => {
  const port = await freeLoopbackPort();
  const f = parseHostFwd(`${port}:80`);
  await addLiveForward(qmp, 'net0', f);
  assert.ok((await liveForwards(qmp)).some((l) => l.hostPort === port && l.guestPort === 80));
  await assert.rejects(listenOn(port), /EADDRINUSE/, 'QEMU holds the host port');
  assert.equal(await removeLiveForward(qmp, 'net0', f), true);
  assert.equal(await removeLiveForward(qmp, 'net0', f), false, 'a second remove finds nothing');
  (await listenOn(port)).close();
});

test('a host port in use is refused in one line, and nothing is added', async () => {
  const port = await freeLoopbackPort();
  const holder = await listenOn(port);
  try {
    const f = parseHostFwd(`${port}:8080`);
    await assert.rejects(
      addLiveForward(qmp, 'net0', f),
      new RegExp(`cannot forward 127\\.0\\.0\\.1:${port} -> 8080/tcp: host port ${port} is in use`),
    );
    assert.ok(!(await liveForwards(qmp)).some((l) => l.hostPort === port));
  } finally {
    holder.close();
  }
});

test('UDP forwards are added and removed by protocol', async () => {
  const port = await freeLoopbackPort();
  const f = parseHostFwd(`${port}:53/udp`);
  await addLiveForward(qmp, 'net0', f);
  assert.ok((await liveForwards(qmp)).some((l) => l.protocol === 'udp' && l.hostPort === port));
  assert.equal(await removeLiveForward(qmp, 'net0', { ...f, protocol: 'tcp' }), false);
  assert.equal(await removeLiveForward(qmp, 'net0', f), true);
});

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
