import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fwCfgArchive, writeFwCfgDisk } from '../../src/vm/fw-cfg-disk.js';

test('the fw_cfg disk is a tar archive that tar unpacks to each item under its fw_cfg name', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmstub-fwcfg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const keys = join(dir, 'keys');
  writeFileSync(keys, 'ssh-ed25519 AAAA test\n'.repeat(40));
  const disk = join(dir, 'fw-cfg.tar');
  writeFwCfgDisk(disk, [
    { name: 'opt/org.vmstub/name', string: 'web1' },
    { name: 'opt/org.vmstub/ssh-authorized-keys', file: keys },
    { name: 'opt/org.vmstub/name', string: 'web2' },
  ]);
  assert.equal(readFileSync(disk).length % 512, 0);
  const out = join(dir, 'out');
  execFileSync('mkdir', [out]);
  execFileSync('tar', ['-xf', disk, '-C', out]);
  assert.equal(
    readFileSync(join(out, 'opt/org.vmstub/name'), 'utf8'),
    'web2',
    'the later item of a name wins',
  );
  assert.equal(
    readFileSync(join(out, 'opt/org.vmstub/ssh-authorized-keys'), 'utf8'),
    readFileSync(keys, 'utf8'),
  );
  assert.throws(
    () => fwCfgArchive([{ name: `opt/${'x'.repeat(100)}`, string: '' }]),
    /longer than 100 bytes/,
  );
});
