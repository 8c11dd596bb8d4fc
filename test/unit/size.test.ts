import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSize, parseMemoryMiB, parseSize } from '../../src/util/size.js';

test('parseSize reads binary units', () => {
  const cases: [string, number][] = [
    ['8G', 8 * 1024 ** 3],
    ['512M', 512 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['64KiB', 64 * 1024],
    ['2t', 2 * 1024 ** 4],
    ['10GB', 10 * 1024 ** 3],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

test('parseSize rejects bare numbers, nonsense and zero with one clear line', () => {
  assert.throws(() => parseSize('8'), /needs a unit, e\.g\. 8G/);
  assert.throws(() => parseSize('eight'), /is not a size/);
  assert.throws(() => parseSize('8X'), /is not a size/);
  assert.throws(() => parseSize('0G'), /larger than zero/);
  assert.throws(() => parseSize('-1G'), /is not a size/);
});

test('parseMemoryMiB takes MiB or a size', () => {
  assert.equal(parseMemoryMiB('2048'), 2048);
  assert.equal(parseMemoryMiB('4G'), 4096);
  assert.equal(parseMemoryMiB('512M'), 512);
  assert.throws(() => parseMemoryMiB('32'), /too small/);
  assert.throws(() => parseMemoryMiB('1.3M'), /whole number/);
});

test('formatSize', () => {
  assert.equal(formatSize(300), '300 B');
  assert.equal(formatSize(8 * 1024 ** 3), '8 GiB');
  assert.equal(formatSize(1.5 * 1024 ** 2), '1.5 MiB');
});
