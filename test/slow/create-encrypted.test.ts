/**
 * The slow tier of encrypted roots: create --unlock console on XFS (the install's boot alone is given
 * the passphrase, which its QEMU keeps in fw_cfg until it stops, so the disk grows live then); grown
 * while stopped; `vmstub key keep` and an unattended start that grows the root; then grown live with
 * the host's passphrase (the LUKS container and XFS inside it at once); then cloned with a passphrase
 * of its own, which alone opens the clone. A live grow with no passphrase in the guest is in the e2e
 * test.
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
const CLONE_PASSPHRASE = 'the clone has a key of its own';
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

  it(
    "clone --key-file: to SSH with a passphrase of its own; the source's opens the source alone",
    { timeout: CREATE_TIMEOUT },
    async () => {
      assert.equal(box.run(['stop', 'encx']).code, 0);
      const cloneKey = join(box.home, 'clone.key');
      writeFileSync(cloneKey, `${CLONE_PASSPHRASE}\n`, { mode: 0o600 });
      const r = await box.runAsync(['clone', 'encx', 'encc', '--key-file', cloneKey], {
        timeoutMs: CREATE_TIMEOUT,
      });
      assert.equal(r.code, 0, `${r.stderr}\n${box.consoleLog('encc').split('\n').slice(-40).join('\n')}`);
      assert.match(
        r.stderr,
        /encc's encrypted root takes its own passphrase, not encx's; the two share the volume key/,
      );
      const files = readdirSync(box.instanceDir('encc'));
      assert.ok(files.includes('luks-passphrase'), 'unlocked by the host, as its source is');
      assert.ok(
        !files.includes('luks-source-passphrase'),
        "the source's passphrase went with the first boot",
      );
      assert.match(
        box.sshRoot('encc', ['findmnt', '-no', 'SOURCE,FSTYPE', '/']),
        /\/dev\/mapper\/vmstub-root xfs/,
      );
      // In the clone: its container takes its own passphrase, and no longer the source's.
      const device = /device:\s+(\S+)/.exec(
        box.sshRoot('encc', ['cryptsetup', 'status', 'vmstub-root']),
      )![1]!;
      const opens = (passphrase: string) =>
        // vmstub ssh hands the line to the guest's shell, which gives back cryptsetup's exit status.
        box.run([
          'ssh',
          '--user',
          'root',
          'encc',
          '--',
          `printf %s '${passphrase}' | cryptsetup open --test-passphrase --key-file=- ${device}`,
        ]).code;
      assert.equal(opens(CLONE_PASSPHRASE), 0, "the clone's passphrase opens the clone");
      assert.equal(opens(PASSPHRASE), 2, "the source's passphrase does not");
      // On the host: the source's disk still takes its own passphrase, and not the clone's.
      assert.equal(box.run(['key', 'keep', 'encx', '--key-file', keyFile]).code, 0);
      const other = box.run(['key', 'keep', 'encx', '--key-file', cloneKey]);
      assert.match(other.stderr, /that passphrase does not open encx's root/);
      box.run(['stop', '--force', 'encc']);
      const start = await box.runAsync(['start', 'encx', `--wait-ssh=${BOOT_TIMEOUT / 1000 - 60}`], {
        timeoutMs: BOOT_TIMEOUT,
      });
      assert.equal(start.code, 0, `the source starts unattended as before: ${start.stderr}`);
    },
  );
});
