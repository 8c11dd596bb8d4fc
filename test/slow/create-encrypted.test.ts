/**
 * The slow tier of encrypted roots: create --unlock console on XFS (the install's boot alone is given
 * the passphrase, which its QEMU keeps in fw_cfg until it stops, so the disk grows live then); grown
 * while stopped; `vmstub key keep` and an unattended start that grows the root; then grown live with
 * the host's passphrase (the LUKS container and XFS inside it at once). A live grow with no passphrase
 * in the guest is in the e2e test.
 */
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');

const CREATE_TIMEOUT = 40 * 60_000;
const BOOT_TIMEOUT = 10 * 60_000;
const PASSPHRASE = 'typed at every boot, kept by no one';
const GiB = 1024 ** 3;

describe('an encrypted root: --unlock console, and disk grow', () => {
  const box = new Sandbox();
  const keyFile = join(box.home, 'enc.key');
  const rootBytes = () => Number(box.sshRoot('encx', ['df', '--output=size', '-B1', '/']).split('\n')[1]);
  const containerBytes = () =>
    Number(/size:\s+(\d+) sectors/.exec(box.sshRoot('encx', ['cryptsetup', 'status', 'vmstub-root']))![1]) *
    512;

  before(() => {
    useStub(box);
    writeFileSync(keyFile, `${PASSPHRASE}\n`, { mode: 0o600 });
  });
  after(() => box.cleanup());

  it(
    'create --unlock console: to SSH; the host keeps no passphrase',
    { timeout: CREATE_TIMEOUT },
    async () => {
      const r = await box.runAsync(
        ['create', 'encx', '--distro', 'debian12', '--encrypt', '--unlock', 'console', '--key-file', keyFile],
        { timeoutMs: CREATE_TIMEOUT },
      );
      assert.equal(r.code, 0, `${r.stderr}\n${box.consoleLog('encx').split('\n').slice(-40).join('\n')}`);
      assert.ok(!readdirSync(box.instanceDir('encx')).includes('luks-passphrase'));
      assert.match(
        box.sshRoot('encx', ['findmnt', '-no', 'SOURCE,FSTYPE', '/']),
        /\/dev\/mapper\/vmstub-root xfs/,
      );
    },
  );

  it(
    "disk grow, live, in the boot create started: the install's passphrase is still in its fw_cfg",
    {
      timeout: 300_000,
    },
    () => {
      const root = rootBytes();
      const r = box.run(['disk', 'grow', 'encx', '+1G', '--json'], { timeoutMs: 240_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { filesystem: string }).filesystem, 'grown', r.stdout);
      assert.ok(rootBytes() > root + 0.75 * GiB, 'the root filesystem grew');
    },
  );

  it(
    'stopped, grown, key keep: an unattended start, the root grown at boot',
    {
      timeout: BOOT_TIMEOUT,
    },
    async () => {
      const root = rootBytes();
      assert.equal(box.run(['stop', 'encx']).code, 0);
      assert.equal(box.run(['disk', 'grow', 'encx', '+1G']).code, 0);
      const keep = box.run(['key', 'keep', 'encx', '--key-file', keyFile]);
      assert.equal(keep.code, 0, keep.stderr);
      const r = await box.runAsync(['start', 'encx', `--wait-ssh=${BOOT_TIMEOUT / 1000 - 60}`], {
        timeoutMs: BOOT_TIMEOUT,
      });
      assert.equal(r.code, 0, r.stderr);
      await new Promise((res) => setTimeout(res, 5000));
      assert.ok(rootBytes() > root + 0.75 * GiB, 'the root filesystem grew at boot');
    },
  );

  it(
    'disk grow, live, the host keeping the passphrase: the container and the filesystem in it at once',
    {
      timeout: 300_000,
    },
    () => {
      const [root, container] = [rootBytes(), containerBytes()];
      const r = box.run(['disk', 'grow', 'encx', '+2G', '--json'], { timeoutMs: 240_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { filesystem: string }).filesystem, 'grown', r.stdout);
      assert.ok(containerBytes() >= container + 2 * GiB - (16 << 20), 'the LUKS container grew');
      assert.ok(rootBytes() > root + 1.5 * GiB, 'the root filesystem grew');
    },
  );
});
