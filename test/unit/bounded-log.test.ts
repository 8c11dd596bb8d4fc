import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BoundedLog } from '../../src/vm/bounded-log.js';

test('the console log never grows past its bound, and keeps the previous part', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'blog-')), 'console.log');
  const log = new BoundedLog(path, 1000);
  for (let i = 0; i < 100; i++) log.write(`line ${String(i).padStart(3, '0')} ${'x'.repeat(40)}\n`);
  log.close();
  assert.ok(statSync(path).size <= 1000);
  assert.ok(existsSync(`${path}.1`));
  assert.ok(statSync(`${path}.1`).size <= 1000);
  assert.match(readFileSync(path, 'utf8'), /line 099/);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  // reopening appends to what is there
  const again = new BoundedLog(path, 1000);
  again.write('tail\n');
  again.close();
  const both = readFileSync(`${path}.1`, 'utf8') + readFileSync(path, 'utf8');
  assert.match(both, /line 099 x+\ntail\n$/);
});
