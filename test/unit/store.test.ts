import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { testDefinition } from '../helpers/definition.js';
import {
  acquireInstanceLock,
  createInstance,
  instancePaths,
  listInstanceNames,
  loadDefinition,
  processStartTicks,
  releaseInstanceLock,
  runningSupervisor,
} from '../../src/vm/store.js';

const def = (name: string) => testDefinition(name);

test('instances: created private, listed in order, loaded back; names are unique', () => {
  const root = mkdtempSync(join(tmpdir(), 'store-'));
  const paths = createInstance(def('web2'), root);
  createInstance(def('web1'), root);
  assert.equal(statSync(paths.dir).mode & 0o777, 0o700);
  assert.equal(statSync(paths.definition).mode & 0o777, 0o600);
  assert.deepEqual(listInstanceNames(root), ['web1', 'web2']);
  assert.equal(loadDefinition('web2', root).memoryMiB, 512);
  assert.throws(() => createInstance(def('web1'), root), /already exists/);
  assert.throws(() => loadDefinition('nope', root), /no instance named nope/);
  assert.throws(() => createInstance(def('../evil'), root), /invalid name/);
  assert.throws(() => createInstance(def('-x'), root), /invalid name/);
});

test('lock: one holder at a time; a dead holder is cleaned away with its run files', () => {
  const root = mkdtempSync(join(tmpdir(), 'store-'));
  const paths = createInstance(def('vm'), root);
  acquireInstanceLock(paths, 'vm');
  assert.equal(runningSupervisor(paths), process.pid);
  assert.throws(() => acquireInstanceLock(paths, 'vm'), /vm is already running/);
  releaseInstanceLock(paths);
  assert.equal(runningSupervisor(paths), undefined);

  // A lock left by a process that has exited (its pid may be reused later: the start time tells).
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  writeFileSync(paths.lock, JSON.stringify({ pid: Number(dead.stdout), start: '1' }));
  writeFileSync(paths.qmp, 'stale socket');
  assert.equal(runningSupervisor(paths), undefined);
  acquireInstanceLock(paths, 'vm');
  assert.equal(existsSync(paths.qmp), false, 'stale run files are removed');
  assert.equal(JSON.parse(readFileSync(paths.lock, 'utf8')).pid, process.pid);
  releaseInstanceLock(paths);

  // A live pid whose start time differs is a recycled pid, not the holder.
  writeFileSync(paths.lock, JSON.stringify({ pid: process.pid, start: 'not-my-start' }));
  assert.equal(runningSupervisor(paths), undefined);
});

test('lock: of many concurrent processes exactly one wins', () => {
  const root = mkdtempSync(join(tmpdir(), 'store-'));
  const paths = createInstance(def('race'), root);
  const storeModule = new URL('../../src/vm/store.js', import.meta.url).href;
  const script = `
    const { acquireInstanceLock } = await import(${JSON.stringify(storeModule)});
    const paths = JSON.parse(process.argv[1]);
    const go = Number(process.argv[2]); while (Date.now() < go) {}
    try { acquireInstanceLock(paths, 'race'); process.stdout.write('won'); setTimeout(() => {}, 500); }
    catch (e) { process.stdout.write('lost'); }`;
  const results = spawnSync(
    'bash',
    [
      '-c',
      `for i in 1 2 3 4 5 6; do node --input-type=module -e "$0" "$1" "$2" & done; wait`,
      script,
      JSON.stringify(paths),
      String(Date.now() + 2000),
    ],
    { encoding: 'utf8' },
  );
  const wins = (results.stdout.match(/won/g) ?? []).length;
  const losses = (results.stdout.match(/lost/g) ?? []).length;
  assert.equal(wins, 1, results.stdout + results.stderr);
  assert.equal(losses, 5);
});

test('processStartTicks reads /proc; unknown pids have none', () => {
  assert.match(processStartTicks(process.pid) ?? '', /^\d+$/);
  assert.equal(processStartTicks(2 ** 22 + 12345), undefined);
  assert.ok(instancePaths('x', '/r').console.endsWith('/r/x/console.sock'));
});
