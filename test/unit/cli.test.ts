import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Option } from '@commander-js/extra-typings';
import { describeOption, notesOf } from '../../src/cli/options.js';
import {
  buildProgram,
  commandPath,
  inlineValueArgv,
  leafCommands,
  type AnyCommand,
} from '../../src/cli/program.js';
import { defaultText, fieldDecl, fileFields } from '../../src/installer/spec-fields.js';
import { DEFAULTS } from '../../src/vm/definition-builder.js';

const find = (path: string): AnyCommand => {
  const c = leafCommands(buildProgram()).find((l) => commandPath(l) === path);
  assert.ok(c, path);
  return c;
};

/** Parses options only (no action runs): what the user's words become, or the error they get. */
const parse = (path: string, argv: string[]) => {
  const c = find(path);
  const { operands } = c.parseOptions(argv);
  return { values: c.opts(), operands };
};

test('typed values: numbers parsed, lists collected in order, flags true, camelCase names', () => {
  const { values, operands } = parse('run', [
    '-n',
    'x',
    '--cpus',
    '4',
    '--share=/a',
    '--share',
    '/b:data',
    '--detach',
    '--stop-timeout',
    '30',
    'image.squashfs',
  ]);
  assert.equal(values.name, 'x');
  assert.equal(values.cpus, 4);
  assert.deepEqual(values.share, ['/a', '/b:data']);
  assert.equal(values.detach, true);
  assert.equal(values.stopTimeout, 30);
  assert.deepEqual(operands, ['image.squashfs']);
});

test('bad input the parser catches: each one line naming the command and its help', () => {
  const cases: [string, string[], RegExp][] = [
    ['run', ['--name', 'a', '--name', 'b'], /run: --name given twice \(see vmstub run --help\)$/],
    ['run', ['--json', '--json'], /run: --json given twice/],
    ['run', ['--cpus', '0'], /--cpus '0' must be a whole number from 1 to 64$/],
    ['run', ['--cpus', '2.5'], /must be a whole number/],
    ['run', ['--accel', 'hvf'], /run: --accel 'hvf' is not one of auto, kvm, tcg \(see vmstub run --help\)$/],
    ['run', ['--name'], /run: --name needs a value/],
    ['allocate', ['--format', 'vmdk'], /allocate: --format 'vmdk' is not one of raw, qcow2/],
    ['create', ['--filesystem', 'zfs'], /create: --filesystem 'zfs' is not one of xfs, btrfs, ext4/],
    ['create', ['--hostname', 'a', '--hostname', 'b'], /create: --hostname given twice/],
    ['stop', ['--timeout', 'soon'], /--timeout 'soon' must be a whole number/],
  ];
  for (const [path, argv, re] of cases)
    assert.throws(() => parse(path, argv), re, `${path} ${argv.join(' ')}`);
});

test('repeatable options may repeat; after --, words are operands, never options', () => {
  assert.deepEqual(parse('create', ['--package', 'a', '--package', 'b']).values.package, ['a', 'b']);
  const { values, operands } = parse('rm', ['--', '--disks', 'web1']);
  assert.equal(values.disks, undefined, '--disks after -- is not the option');
  assert.deepEqual(operands, ['--disks', 'web1']);
});

test('a value that may only follow = leaves the next word alone', () => {
  const program = buildProgram();
  assert.deepEqual(inlineValueArgv(program, ['start', '--wait-ssh', 'web1']), [
    'start',
    '--wait-ssh=',
    'web1',
  ]);
  assert.deepEqual(inlineValueArgv(program, ['start', '--wait-ssh=30', 'web1']), [
    'start',
    '--wait-ssh=30',
    'web1',
  ]);
  assert.deepEqual(inlineValueArgv(program, ['ssh', 'w', '--', '--wait-ssh']), [
    'ssh',
    'w',
    '--',
    '--wait-ssh',
  ]);
  assert.equal(parse('start', ['--wait-ssh=', 'web1']).values.waitSsh, 120);
  assert.equal(parse('start', ['--wait-ssh=30', 'web1']).values.waitSsh, 30);
});

test('help says each default once, from the value the code uses', () => {
  const help = find('run').helpInformation().replace(/\s+/g, ' ');
  assert.match(help, new RegExp(`virtual CPUs \\(default ${DEFAULTS.cpus}\\)`));
  assert.match(help, new RegExp(`\\(default ${DEFAULTS.memoryMiB} MiB\\)`));
  assert.match(help, /one of auto, kvm, tcg; default auto; env VMSTUB_ACCEL/);
  assert.match(help, /--wait-ssh\[=SECONDS\]/);
  assert.doesNotMatch(find('start').helpInformation(), /--detach/, 'start has no --detach');
  assert.match(help, /--stub/);
});

test('every spec field with a flag is an option of create, with its doc and default', () => {
  const create = find('create');
  const plan = find('plan');
  for (const field of fileFields) {
    for (const flag of fieldDecl(field).flags ?? []) {
      const long = /--[\w-]+/.exec(flag.flags)![0];
      const option = (create.options as readonly Option[]).find((o) => o.long === long);
      assert.ok(option, `create ${long}`);
      assert.equal(notesOf(option).repeatable === true, flag.repeatable === true, long);
      const shown = defaultText(fieldDecl(field));
      if (!flag.help && shown && option.required)
        assert.match(describeOption(option), new RegExp(`default ${shown}`));
      const onPlan = (plan.options as readonly Option[]).some((o) => o.long === long);
      assert.equal(onPlan, !fieldDecl(field).machine, `plan ${long}: machine fields only where a VM is made`);
    }
  }
});

test('every command that reports something takes --json', () => {
  const without = leafCommands(buildProgram())
    .filter((c) => !(c.options as readonly Option[]).some((o) => o.long === '--json'))
    .map(commandPath);
  // console attaches a terminal or prints a log; schema and completion print documents of their own.
  assert.deepEqual(without.sort(), ['completion', 'console', 'schema']);
});
