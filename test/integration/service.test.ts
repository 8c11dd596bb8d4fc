/**
 * vmstub service and stopall with real QEMU. These machines do not run systemd as PID 1, so the unit is
 * tested the way systemd would use it: the template vmstub service enable wrote is read back, its
 * ExecStart run as the unit's command (its Environment, no terminal, %i for the instance), the service
 * is ready when that command returns (Type=forking) with its main process the pid in PIDFile, and its
 * ExecStop stops the VM. systemd-analyze verify checks the unit itself (test/unit/service.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Sandbox, waitFor } from '../helpers/cli.js';
import { fixtureSystemImage, type FixtureImage } from '../helpers/fixture.js';

let fixture: FixtureImage;
let box: Sandbox;
let unitDir: string;

/** One Exec-style line of a unit as systemd splits it: words, double quotes with \ escapes, %% and $$. */
function unitCommand(line: string, instance: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g))
    words.push(
      (m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!)
        .replace(/%i/g, instance)
        .replace(/%%/g, '%')
        .replace(/\$\$/g, '$'),
    );
  return words;
}

function unitSetting(text: string, key: string): string {
  const line = text.split('\n').find((l) => l.startsWith(`${key}=`));
  assert.ok(line, `the unit has ${key}=`);
  return line.slice(key.length + 1);
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

before(() => {
  fixture = fixtureSystemImage();
  box = new Sandbox();
  unitDir = mkdtempSync(join(tmpdir(), 'vmstub-units-'));
  box.env.VMSTUB_UNIT_DIR = unitDir;
});

after(() => {
  box.cleanup();
  rmSync(unitDir, { recursive: true, force: true });
});

describe('a VM as a systemd service, and stopall', () => {
  let unit = '';

  test('service enable writes the template and links the instance into multi-user.target', () => {
    const made = box.run([
      'run',
      '--detach',
      '--name',
      'svc',
      '--memory',
      '256M',
      '--cpus',
      '1',
      fixture.image,
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(box.run(['stop', '--force', 'svc']).code, 0);
    const r = box.run(['service', 'enable', '--json', 'svc']);
    assert.equal(r.code, 0, r.stderr);
    const change = JSON.parse(r.stdout) as {
      unit: string;
      enabled: boolean;
      systemd: boolean;
      templatePath: string;
    };
    assert.deepEqual([change.unit, change.enabled, change.systemd], ['vmstub@svc.service', true, false]);
    assert.match(r.stderr, /systemd is not running here: the unit files are in place/);
    unit = readFileSync(change.templatePath, 'utf8');
    assert.match(box.run(['show', 'svc']).stdout, /^service:\s+vmstub@svc\.service, enabled$/m);
    assert.ok(existsSync(join(unitDir, `${isRootTarget()}.wants`, 'vmstub@svc.service')));
  });

  test("the unit's ExecStart, run as systemd would, returns once the VM runs; PIDFile names its supervisor", async () => {
    // The unit's environment is all the command gets: its one Environment= line, and a PATH.
    const [key, ...value] = unitCommand(unitSetting(unit, 'Environment'), 'svc')[0]!.split('=');
    const env = { PATH: process.env.PATH, [key!]: value.join('=') };
    assert.deepEqual([key, env.VMSTUB_HOME], ['VMSTUB_HOME', box.home]);
    const [program, ...args] = unitCommand(unitSetting(unit, 'ExecStart'), 'svc');
    const start = spawnSync(program!, args, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(start.status, 0, start.stderr);
    const pidFile = unitCommand(unitSetting(unit, 'PIDFile'), 'svc').join(' ');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(alive(pid), 'the main process outlives ExecStart (Type=forking)');
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim().slice(0, 15), 'vmstub-supervis');
    await box.waitForConsole('svc', 'svc to boot', 'VMSTUB-FIXTURE-READY', 90_000);

    const [stopProgram, ...stopArgs] = unitCommand(unitSetting(unit, 'ExecStop'), 'svc');
    const stop = spawnSync(stopProgram!, stopArgs, { env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(stop.stdout, 'svc powered off\n', 'ExecStop asks the guest first');
    // As systemd does after ExecStop, wait for the main process to end (it cleans up after QEMU first).
    await waitFor(
      'the main process to end, and its pid file to go',
      () => !alive(pid) && !existsSync(pidFile),
      10_000,
    );
  });

  test('stopall powers off every running instance at once', { timeout: 180_000 }, async () => {
    assert.equal(box.run(['start', 'svc']).code, 0);
    const other = box.run([
      'run',
      '--detach',
      '--name',
      'other',
      '--memory',
      '256M',
      '--cpus',
      '1',
      fixture.image,
    ]);
    assert.equal(other.code, 0, other.stderr);
    for (const n of ['svc', 'other'])
      await box.waitForConsole(n, `${n} to boot`, 'VMSTUB-FIXTURE-READY', 90_000);
    const r = box.run(['stopall', '--json'], { timeoutMs: 150_000 });
    assert.equal(r.code, 0, r.stderr);
    const outcomes = (JSON.parse(r.stdout) as { name: string; outcome: string }[]).map((o) => [
      o.name,
      o.outcome,
    ]);
    assert.deepEqual(outcomes.sort(), [
      ['other', 'powered-off'],
      ['svc', 'powered-off'],
    ]);
    assert.equal(box.run(['stopall']).stdout, 'no instance is running\n');
  });

  test('rm takes the instance out of the target; disable of an unknown instance is refused', () => {
    assert.equal(box.run(['rm', '--disks', 'svc']).code, 0);
    assert.ok(!existsSync(join(unitDir, `${isRootTarget()}.wants`, 'vmstub@svc.service')));
    const r = box.run(['service', 'disable', 'svc']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /no instance named svc/);
  });
});

function isRootTarget(): string {
  return process.getuid?.() === 0 ? 'multi-user.target' : 'default.target';
}
