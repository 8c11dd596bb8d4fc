// The systemd units of vmstub service: written and linked as systemctl enable would, and checked by
// systemd's own parser (systemd-analyze verify: syntax, specifiers, the executables it would run).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  disableService,
  enableService,
  isServiceEnabled,
  serviceScope,
  templateHome,
  templateUnit,
  transientInstall,
  unitWord,
} from '../../src/vm/service.js';

const command = [process.execPath, '/usr/lib/node_modules/vmstub/vmstub.cjs'];

test('the template passes systemd-analyze verify, also for a home with a space, % and $ in it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'units-'));
  for (const home of ['/var/lib/vmstub', join(dir, 'my vms %h $HOME')]) {
    const unit = join(dir, 'vmstub@web1.service');
    mkdirSync(join(home, 'instances', 'web1'), { recursive: true });
    writeFileSync(
      unit,
      templateUnit({ command: [process.execPath, process.execPath], home, target: 'multi-user.target' }),
    );
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    const ours = r.stderr.split('\n').filter((l) => l.includes(unit));
    assert.deepEqual(ours, [], `systemd-analyze verify: ${r.stderr}`);
    assert.equal(r.status, 0);
    assert.equal(templateHome(readFileSync(unit, 'utf8')), home, 'the home reads back from the unit');
  }
});

test('the unit runs vmstub start and stop for the instance, forking, with its supervisor as main process', () => {
  const text = templateUnit({ command, home: '/var/lib/vmstub', target: 'multi-user.target' });
  assert.match(text, /^Type=forking$/m);
  assert.match(
    text,
    new RegExp(`^ExecStart=${process.execPath} /usr/lib/node_modules/vmstub/vmstub\\.cjs start %i$`, 'm'),
  );
  assert.match(text, /^ExecStop=\S+ \S+ stop %i$/m);
  assert.match(text, /^PIDFile=\/var\/lib\/vmstub\/instances\/%i\/supervisor\.pid$/m);
  assert.match(text, /^Environment=VMSTUB_HOME=\/var\/lib\/vmstub$/m);
  assert.match(text, /^WantedBy=multi-user\.target$/m);
});

test('unit words: specifiers and variables escaped, quoted when needed', () => {
  assert.equal(unitWord('/usr/bin/node', true), '/usr/bin/node');
  assert.equal(unitWord('/a b/%i', true), '"/a b/%%i"');
  assert.equal(unitWord('/cost$5', true), '/cost$$5');
  assert.equal(unitWord('/cost$5', false), '/cost$5');
  assert.equal(unitWord('say "hi"\\', false), '"say \\"hi\\"\\\\"');
});

test('enable writes the template once and links the instance; disable takes the link away', () => {
  const dir = mkdtempSync(join(tmpdir(), 'units-'));
  process.env.VMSTUB_HOME = join(dir, 'home');
  const scope = { ...serviceScope({}, true), unitDir: join(dir, 'system') };
  const first = enableService('web1', command, scope);
  assert.deepEqual([first.wroteTemplate, first.changed, first.enabled], [true, true, true]);
  assert.equal(
    readlinkSync(join(scope.unitDir, 'multi-user.target.wants', 'vmstub@web1.service')),
    '../vmstub@.service',
  );
  assert.equal(templateHome(readFileSync(first.templatePath, 'utf8')), join(dir, 'home'));
  const again = enableService('web1', command, scope);
  assert.deepEqual([again.wroteTemplate, again.changed], [false, false]);
  enableService('web2', command, scope);
  assert.ok(isServiceEnabled('web2', scope));

  assert.equal(disableService('web1', scope).changed, true);
  assert.ok(!existsSync(first.linkPath));
  assert.equal(disableService('web1', scope).changed, false);
  assert.ok(isServiceEnabled('web2', scope), 'the other instance stays enabled');
});

test("a template serving another home is not taken over, nor its instances' links removed", () => {
  const dir = mkdtempSync(join(tmpdir(), 'units-'));
  const scope = { ...serviceScope({}, true), unitDir: join(dir, 'system') };
  process.env.VMSTUB_HOME = join(dir, 'main');
  const main = enableService('web1', command, scope);
  const before = readFileSync(main.templatePath, 'utf8');
  process.env.VMSTUB_HOME = join(dir, 'sandbox');
  assert.throws(
    () => enableService('web1', command, scope),
    /starts the instances of .*main, not of .*sandbox/,
  );
  assert.equal(disableService('web1', scope).changed, false);
  assert.ok(isServiceEnabled('web1', scope));
  assert.equal(readFileSync(main.templatePath, 'utf8'), before);
});

test('other users: their own units, started with their session', () => {
  const scope = serviceScope({ XDG_CONFIG_HOME: '/home/alice/.config' }, false);
  assert.deepEqual(scope, {
    kind: 'user',
    unitDir: '/home/alice/.config/systemd/user',
    target: 'default.target',
  });
  assert.equal(serviceScope({ VMSTUB_UNIT_DIR: '/tmp/u' }, true).unitDir, '/tmp/u');
});

test("a vmstub from npx's cache or a temporary directory is said to be transient; an installed one is not", () => {
  const npx = '/home/alice/.npm/_npx/4f1c2a/node_modules/vmstub/dist/vmstub.cjs';
  assert.match(transientInstall(npx, '/tmp') ?? '', /npx's cache/);
  assert.match(transientInstall('/tmp/vmstub/dist/vmstub.cjs', '/tmp') ?? '', /runs from \/tmp/);
  assert.equal(transientInstall('/tmpfoo/vmstub/dist/vmstub.cjs', '/tmp'), undefined);
  assert.equal(transientInstall(command[1]!, '/tmp'), undefined);
  assert.equal(transientInstall('/home/alice/src/vmstub/dist/vmstub.cjs', '/tmp'), undefined);
});
