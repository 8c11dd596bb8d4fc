import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HANDOFF_LUKS_KEY, initrdWithKey } from '../../src/boot/initrd-key.js';
import { luksKeyScript } from '../../src/installer/render.js';
import { newPassphrase, passphraseFromFile } from '../../src/installer/luks-key.js';

const dir = mkdtempSync(join(tmpdir(), 'vmstub-luks-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the passphrase appended to an initramfs unpacks with cpio, after the initramfs, readable by root alone', () => {
  const initrd = Buffer.from('an initramfs of 31 bytes, odd..');
  const out = initrdWithKey(initrd, Buffer.from('correct horse'));
  assert.deepEqual(out.subarray(0, initrd.length), initrd);
  const archive = out.subarray(Math.ceil(initrd.length / 4) * 4);
  assert.equal(archive.subarray(0, 6).toString(), '070701', 'the archive starts at a four-byte boundary');
  const into = join(dir, 'unpacked');
  const r = spawnSync('sh', ['-c', `mkdir -p ${into} && cd ${into} && cpio -id --quiet`], { input: archive });
  assert.equal(r.status, 0, r.stderr.toString());
  const file = join(into, HANDOFF_LUKS_KEY);
  assert.equal(readFileSync(file, 'utf8'), 'correct horse');
  const listed = spawnSync('cpio', ['-itv', '--quiet'], { input: archive, encoding: 'utf8' }).stdout;
  assert.match(listed, /^drwx------ .* vmstub$/m);
  assert.match(listed, /^-r-------- .* vmstub\/luks-key$/m);
});

test('the key script offers the handoff passphrase, then the host one, once; then asks', () => {
  const script = luksKeyScript('/sys/firmware/qemu_fw_cfg/by_name/opt/org.vmstub/luks-passphrase/raw');
  const run = (tried: number, handoff: boolean) => {
    const root = mkdtempSync(join(dir, 'root-'));
    const body = script
      .replaceAll(HANDOFF_LUKS_KEY, join(root, 'handoff-key'))
      .replace('/sys/firmware/qemu_fw_cfg/by_name', join(root, 'fw_cfg'))
      .replace('exec /lib/cryptsetup/askpass', 'echo ASKED')
      .replace('modprobe -q qemu_fw_cfg', 'true');
    if (handoff) writeFileSync(join(root, 'handoff-key'), 'from the handoff');
    spawnSync('mkdir', ['-p', join(root, 'fw_cfg/opt/org.vmstub/luks-passphrase')]);
    writeFileSync(join(root, 'fw_cfg/opt/org.vmstub/luks-passphrase/raw'), 'from the host');
    writeFileSync(join(root, 'key.sh'), body);
    chmodSync(join(root, 'key.sh'), 0o755);
    return spawnSync(join(root, 'key.sh'), {
      env: { CRYPTTAB_TRIED: String(tried), PATH: process.env.PATH },
      encoding: 'utf8',
    }).stdout;
  };
  assert.equal(run(0, true), 'from the handoff');
  assert.equal(run(0, false), 'from the host');
  assert.match(run(1, true), /^ASKED/, 'a passphrase that failed is not offered again');
});

test('a key file: its first line; missing, empty, a directory: one clear line each', async () => {
  const file = join(dir, 'key');
  writeFileSync(file, 'secret words\nsecond line\n');
  assert.equal(passphraseFromFile(file), 'secret words');
  assert.throws(() => passphraseFromFile(join(dir, 'none')), /--key-file .*none: no such file/);
  writeFileSync(file, '\n');
  assert.throws(() => passphraseFromFile(file), /its first line is empty/);
  assert.throws(() => passphraseFromFile(dir), /is a directory/);
  await assert.rejects(newPassphrase(undefined, undefined), /--key-file FILE \(there is no terminal/);
  const answers = ['one', 'two'];
  await assert.rejects(
    newPassphrase(undefined, () => Promise.resolve(answers.shift()!)),
    /differ/,
  );
  assert.equal(await newPassphrase(undefined, () => Promise.resolve('same')), 'same');
});
