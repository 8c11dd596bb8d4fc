import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildDefinition, parseFwCfg, parseShare, type RunOptions } from '../../src/vm/definition-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'defb-'));
writeFileSync(join(dir, 'sys.squashfs'), 'hsqs');
writeFileSync(join(dir, 'data.img'), Buffer.alloc(1024));
writeFileSync(join(dir, 'app.ini'), 'x=1');
mkdirSync(join(dir, 'share'));

const opts = (o: Partial<RunOptions> = {}): RunOptions => ({
  system: 'sys.squashfs',
  share: [],
  hostfwd: [],
  net: [],
  append: [],
  fwCfg: [],
  hvc: false,
  uefi: false,
  rm: false,
  ...o,
});

test('a minimal run: absolute paths, defaults, a generated name from the image', () => {
  const d = buildDefinition(opts(), dir);
  assert.equal(d.system, join(dir, 'sys.squashfs'));
  assert.equal(d.memoryMiB, 2048);
  assert.equal(d.cpus, 2);
  assert.deepEqual(d.nets, [{ kind: 'user' }]);
  assert.equal(d.accel, 'auto');
  assert.match(d.name, /^sys-[0-9a-f]{4}$/);
});

test('options map into the definition', () => {
  const d = buildDefinition(
    opts({
      name: 'w',
      memory: '1G',
      cpus: 1,
      data: 'data.img',
      share: ['share:src'],
      hostfwd: ['8080:80'],
      append: ['quiet  '],
      fwCfg: ['app=@app.ini', 'opt/k=v'],
      accel: 'tcg',
    }),
    dir,
  );
  assert.equal(d.memoryMiB, 1024);
  assert.deepEqual(d.data, { path: join(dir, 'data.img'), format: 'raw' });
  assert.deepEqual(d.shares, [{ path: join(dir, 'share'), tag: 'src' }]);
  assert.deepEqual(d.fwCfg, [
    { name: 'opt/app', file: join(dir, 'app.ini') },
    { name: 'opt/k', string: 'v' },
  ]);
  assert.deepEqual(d.append, ['quiet']);
});

test('bad input is refused before anything exists', () => {
  const bad: [Partial<RunOptions>, RegExp][] = [
    [{ system: undefined }, /give a SYSTEM image, --kernel, --iso or --boot-disk/],
    [{ system: 'missing.squashfs' }, /system image .*missing.squashfs not found/],
    [
      { kernel: 'k' },
      /give one of a SYSTEM image, --kernel, --iso or --boot-disk, not a SYSTEM image and --kernel/,
    ],
    [{ iso: 'live.iso' }, /not a SYSTEM image and --iso/],
    [{ system: undefined, iso: 'missing.iso' }, /ISO .*missing.iso not found/],
    [{ system: undefined, iso: 'live.iso', bootDisk: 'live.iso' }, /not --iso and --boot-disk/],
    [{ system: undefined, bootDisk: 'missing.img' }, /boot disk .*missing.img not found/],
    [{ initrd: 'i' }, /--initrd needs --kernel/],
    [{ data: 'nope.img' }, /data disk .* not found \(create it with: vmstub allocate nope.img 8G\)/],
    [{ data: 'data.img', volatileData: '1G' }, /choose one/],
    [{ volatileData: '5' }, /needs a unit/],
    [{ name: 'bad name' }, /invalid name/],
    [{ memory: 'lots' }, /is not a size/],
    [{ share: ['share', 'share'] }, /tag 'fs' used twice/],
    [{ share: ['nodir'] }, /directory .*nodir not found/],
    [{ hostfwd: ['8080:80'], net: ['tap:tap0'] }, /--hostfwd needs a user-mode network/],
    [{ accel: 'hvf' }, /--accel 'hvf' is not auto, kvm or tcg/],
    [{ fwCfg: ['novalue'] }, /NAME=@FILE or NAME=STRING/],
    [{ fwCfg: ['x=@missing'] }, /file .*missing not found/],
  ];
  for (const [o, re] of bad) assert.throws(() => buildDefinition(opts(o), dir), re, JSON.stringify(o));
});

test('an ISO alone: booted by the firmware, the name from the file', () => {
  writeFileSync(join(dir, 'live.iso'), 'CD001');
  const def = buildDefinition(opts({ system: undefined, iso: 'live.iso', uefi: true }), dir);
  assert.equal(def.iso, join(dir, 'live.iso'));
  assert.equal(def.system, undefined);
  assert.equal(def.uefi, true);
  assert.match(def.name, /^live-[0-9a-f]{4}$/);
});

test('a boot disk alone: booted by the firmware, its format from its content, the name from the file', () => {
  writeFileSync(join(dir, 'usb.img'), Buffer.alloc(4096));
  const def = buildDefinition(opts({ system: undefined, bootDisk: 'usb.img' }), dir);
  assert.deepEqual(def.bootDisk, { path: join(dir, 'usb.img'), format: 'raw' });
  assert.equal(def.system, undefined);
  assert.match(def.name, /^usb-[0-9a-f]{4}$/);
});

test('share and fw_cfg parsing details', () => {
  assert.deepEqual(parseShare(join(dir, 'share'), '/'), { path: join(dir, 'share'), tag: 'fs' });
  assert.throws(() => parseShare(`${dir}/share:bad tag`, '/'), /tag 'bad tag'/);
  assert.deepEqual(parseFwCfg('opt/org.x/y=a=b', '/'), { name: 'opt/org.x/y', string: 'a=b' });
  assert.throws(() => parseFwCfg('a,b=c', '/'), /must not contain commas/);
  assert.throws(() => parseFwCfg(`${'x'.repeat(60)}=1`, '/'), /longer than QEMU's limit/);
});
