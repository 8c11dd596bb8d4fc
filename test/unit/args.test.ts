import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHelp, intOption, parseArgs, type CommandSpec } from '../../src/cli/args.js';

const spec: CommandSpec = {
  name: 'demo',
  summary: 'demo command',
  usage: '[options] A [B]',
  positionals: [{ name: 'A' }, { name: 'B', optional: true }],
  passthrough: true,
  options: [
    { name: 'name', short: 'n', takes: 'value', help: 'a name' },
    { name: 'share', takes: 'value', repeat: true, help: 'repeat' },
    { name: 'detach', takes: 'flag', help: 'flag' },
    { name: 'wait-ssh', takes: 'optional', valueName: 'SECONDS', help: 'optional value' },
    { name: 'cpus', takes: 'value', help: 'int' },
  ],
};

test('values, repeats, flags, short options and passthrough', () => {
  const a = parseArgs(spec, ['-n', 'x', '--share=/a', '--share', '/b', '--detach', 'pos1', '--', 'ls', '-l']);
  assert.equal(a.values.get('name'), 'x');
  assert.deepEqual(a.values.get('share'), ['/a', '/b']);
  assert.equal(a.values.get('detach'), true);
  assert.deepEqual(a.positionals, ['pos1']);
  assert.deepEqual(a.rest, ['ls', '-l']);
  assert.equal(parseArgs(spec, ['-nfoo', 'p']).values.get('name'), 'foo');
});

test('an optional value is only taken with =', () => {
  assert.equal(parseArgs(spec, ['--wait-ssh', 'p']).values.get('wait-ssh'), true);
  assert.deepEqual(parseArgs(spec, ['--wait-ssh', 'p']).positionals, ['p']);
  assert.equal(parseArgs(spec, ['--wait-ssh=30', 'p']).values.get('wait-ssh'), '30');
});

test('mistakes are one usage error naming the command', () => {
  assert.throws(
    () => parseArgs(spec, ['--nope', 'p']),
    /demo: unknown option --nope \(see vmstub demo --help\)/,
  );
  assert.throws(() => parseArgs(spec, ['-z', 'p']), /unknown option -z/);
  assert.throws(() => parseArgs(spec, ['p', '--name']), /--name needs a value/);
  assert.throws(() => parseArgs(spec, ['--detach=yes', 'p']), /takes no value/);
  assert.throws(() => parseArgs(spec, ['--name', 'a', '--name', 'b', 'p']), /given twice/);
  assert.throws(() => parseArgs(spec, []), /missing A/);
  assert.throws(() => parseArgs(spec, ['a', 'b', 'c']), /unexpected argument 'c'/);
  assert.throws(() => parseArgs({ ...spec, passthrough: false }, ['a', '--']), /unexpected '--'/);
  for (const bad of ['0', 'x', '2.5', '100']) {
    assert.throws(
      () => intOption(parseArgs(spec, ['--cpus', bad, 'p']), 'cpus', 1, 64),
      /must be a whole number from 1 to 64/,
    );
  }
});

test('--help skips positional checks and help lists every option', () => {
  assert.equal(parseArgs(spec, ['--help']).help, true);
  const help = formatHelp(spec);
  for (const o of ['--name', '--share', '--detach', '--wait-ssh[=SECONDS]', '--help'])
    assert.ok(help.includes(o), o);
  assert.match(help, /Usage: vmstub demo \[options\] A \[B\]/);
});
