import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { waitForSshBanner } from '../../src/vm/ssh.js';

/**
 * A stand-in for QEMU's user-mode forward (a fake for pure logic: no QEMU here): it accepts every
 * connection at once, but holds those made before `readyAfterMs` silent, as a forward does while the
 * guest's sshd is not listening yet; later connections get a banner.
 */
async function forward(readyAfterMs: number) {
  const started = Date.now();
  const held: Socket[] = [];
  const server = createServer((s) => {
    if (Date.now() - started < readyAfterMs) held.push(s);
    else s.end('SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    started,
    close: () => {
      for (const s of held) s.destroy();
      server.close();
    },
  };
}

test('the wait for SSH ends within about a second of sshd listening, not when a held connection gives up', async () => {
  const readyAfterMs = 1200;
  const f = await forward(readyAfterMs);
  try {
    const banner = await waitForSshBanner(f.port, 20_000, () => true);
    const late = Date.now() - f.started - readyAfterMs;
    assert.equal(banner, 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3');
    // One read at a time would answer only when the first held read gave up (3 s) and the next began.
    assert.ok(late < 1500, `answered ${late} ms after the server was ready`);
  } finally {
    f.close();
  }
});

test('the wait for SSH gives up at its deadline, and at once when the VM is gone', async () => {
  const f = await forward(60_000);
  try {
    let t = Date.now();
    assert.equal(await waitForSshBanner(f.port, 1500, () => true), undefined);
    assert.ok(Date.now() - t < 4000, 'not long after the deadline');
    t = Date.now();
    assert.equal(await waitForSshBanner(f.port, 20_000, () => false), undefined);
    assert.ok(Date.now() - t < 1000, 'a VM that stopped ends the wait');
  } finally {
    f.close();
  }
});
