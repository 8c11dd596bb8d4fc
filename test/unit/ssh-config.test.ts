// The config blocks and the Include line, read back by OpenSSH's own parser (`ssh -G` prints the
// configuration it would use for a host, without connecting).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sshArgs } from '../../src/vm/ssh.js';
import {
  installInclude,
  instanceSshTarget,
  sshConfigBlock,
  sshConfigInclude,
  withInclude,
  writeSshConfig,
} from '../../src/vm/ssh-config.js';
import { instancePaths } from '../../src/vm/store.js';

/** What ssh would use for HOST under the config file CONFIG: option name (lower case) -> value. */
function resolved(config: string, host: string, extra: string[] = []): Map<string, string> {
  const r = spawnSync('ssh', ['-G', '-F', config, ...extra, host], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const options = new Map<string, string>();
  for (const line of r.stdout.trim().split('\n')) {
    const key = line.slice(0, line.indexOf(' '));
    if (!options.has(key)) options.set(key, line.slice(line.indexOf(' ') + 1)); // identityfile repeats
  }
  return options;
}

function instance(root: string, name: string) {
  const paths = instancePaths(name, root);
  mkdirSync(paths.sshDir, { recursive: true });
  return paths;
}

test("an instance's block: ssh resolves its name and alias to the port, user, known_hosts and key", () => {
  const root = mkdtempSync(join(tmpdir(), 'ssh-config-'));
  const paths = instance(root, 'web1');
  writeFileSync(paths.sshKey, 'not a real key\n');
  writeSshConfig('web1', paths, 'alice', 40123);
  assert.equal(statSync(paths.sshConfig).mode & 0o777, 0o600);
  for (const host of ['web1', 'vmstub-web1']) {
    const c = resolved(paths.sshConfig, host);
    assert.equal(c.get('hostname'), '127.0.0.1');
    assert.equal(c.get('port'), '40123');
    assert.equal(c.get('user'), 'alice');
    assert.equal(c.get('userknownhostsfile'), paths.knownHosts);
    assert.equal(c.get('globalknownhostsfile'), '/dev/null');
    assert.equal(c.get('stricthostkeychecking'), 'true');
    assert.equal(c.get('hostkeyalias'), 'vmstub-web1');
    assert.equal(c.get('identityfile'), paths.sshKey);
  }
  const other = resolved(paths.sshConfig, 'web2');
  assert.equal(other.get('hostname'), 'web2', 'another name is not matched');
  assert.equal(other.get('port'), '22');
});

test('a state directory with a space in it is quoted, and read back whole', () => {
  const root = mkdtempSync(join(tmpdir(), 'ssh config '));
  const paths = instance(root, 'db');
  const text = sshConfigBlock('db', instanceSshTarget('db', paths, 2222, 'root'));
  assert.match(text, /UserKnownHostsFile "[^"]+ssh config [^"]+known_hosts"/);
  writeFileSync(join(root, 'cfg'), text);
  assert.equal(resolved(join(root, 'cfg'), 'db').get('userknownhostsfile'), paths.knownHosts);
  // No IdentityFile line when the instance has no key of its own: ssh uses the user's keys.
  assert.doesNotMatch(text, /IdentityFile/);
  assert.ok(!resolved(join(root, 'cfg'), 'db').get('identityfile')!.startsWith(root));
});

test('an instance with no forwarded port has no block; a later start rewrites the port', () => {
  const root = mkdtempSync(join(tmpdir(), 'ssh-config-'));
  const paths = instance(root, 'web1');
  writeSshConfig('web1', paths, 'root', 40000);
  writeSshConfig('web1', paths, 'root', 40001);
  assert.equal(resolved(paths.sshConfig, 'web1').get('port'), '40001');
  writeSshConfig('web1', paths, 'root', undefined);
  assert.throws(() => statSync(paths.sshConfig), /ENOENT/);
});

test('the Include line takes in every instance, and comes before the user’s own Host blocks', () => {
  const root = mkdtempSync(join(tmpdir(), 'ssh-config-'));
  writeSshConfig('web1', instance(root, 'web1'), 'root', 40001);
  writeSshConfig('web2', instance(root, 'web2'), 'bob', 40002);
  const userConfig = join(root, 'user-config');
  // A catch-all block the user had: ssh keeps the first value it reads, so it must come after ours.
  writeFileSync(userConfig, 'Host *\n  Port 2200\n  User everyone\n');
  const text = withInclude(readFileSync(userConfig, 'utf8'), sshConfigInclude(root));
  assert.equal(withInclude(text, sshConfigInclude(root)), text, 'a second time changes nothing');
  writeFileSync(userConfig, text);
  assert.equal(resolved(userConfig, 'web1').get('port'), '40001');
  assert.equal(resolved(userConfig, 'web2').get('port'), '40002');
  assert.equal(resolved(userConfig, 'web2').get('user'), 'bob');
  assert.equal(resolved(userConfig, 'elsewhere').get('port'), '2200', "the user's own block still applies");
});

test('--install edits the user config once, through a symlink, keeping its mode', () => {
  const root = mkdtempSync(join(tmpdir(), 'ssh-config-'));
  const include = sshConfigInclude(root);
  const fresh = join(root, 'home', '.ssh', 'config');
  assert.equal(installInclude(fresh, include), true);
  assert.equal(statSync(fresh).mode & 0o777, 0o600);
  assert.equal(statSync(join(root, 'home', '.ssh')).mode & 0o777, 0o700);
  assert.equal(installInclude(fresh, include), false);

  const dotfiles = join(root, 'dotfiles-ssh-config');
  writeFileSync(dotfiles, 'Host git\n  HostName git.example.org\n', { mode: 0o644 });
  const linked = join(root, 'linked-config');
  symlinkSync(dotfiles, linked);
  assert.equal(installInclude(linked, include), true);
  assert.ok(lstatSync(linked).isSymbolicLink(), 'the link is kept');
  assert.equal(statSync(dotfiles).mode & 0o777, 0o644);
  assert.match(readFileSync(dotfiles, 'utf8'), /^# vmstub[^\n]*\nInclude [^\n]+\n\nHost git\n/);
});

test("ssh's argv: the caller's options win over vmstub's defaults (ssh keeps the first value)", () => {
  const root = mkdtempSync(join(tmpdir(), 'ssh-config-'));
  const paths = instance(root, 'web1');
  const args = sshArgs(
    instanceSshTarget('web1', paths, 40123, 'root'),
    [],
    ['-o', 'StrictHostKeyChecking=accept-new'],
  );
  const host = args.pop()!;
  const c = resolved('/dev/null', host, args);
  assert.equal(c.get('stricthostkeychecking'), 'accept-new');
  assert.equal(c.get('port'), '40123');
  assert.equal(c.get('user'), 'root');
});
