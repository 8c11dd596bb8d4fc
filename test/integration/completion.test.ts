/**
 * The completion scripts `vmstub completion` writes, run by the real shells: bash through its
 * programmable completion (COMP_WORDS), fish through `complete -C`, zsh loaded by compinit.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';

describe('shell completion', () => {
  const box = new Sandbox();
  after(() => box.cleanup());
  for (const name of ['web1', 'db2']) mkdirSync(join(box.home, 'instances', name), { recursive: true });
  const script = (shell: string) => {
    const r = box.run(['completion', shell]);
    assert.equal(r.code, 0, r.stderr);
    const file = join(box.home, `vmstub.${shell}`);
    writeFileSync(file, r.stdout);
    return file;
  };

  it('bash: commands, sub-commands, options, option values, instance names', () => {
    const file = script('bash');
    /** What bash offers for a command line whose last word is being completed. */
    const offers = (line: string): string[] => {
      const words = line.split(' ');
      const r = spawnSync(
        'bash',
        [
          '-c',
          `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _vmstub; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8', env: box.env },
      );
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split('\n').filter(Boolean).sort();
    };
    assert.deepEqual(offers('vmstub st'), ['start', 'stop', 'stopall']);
    assert.deepEqual(offers('vmstub image '), ['build']);
    assert.deepEqual(offers('vmstub run --acc'), ['--accel']);
    assert.deepEqual(offers('vmstub run --accel '), ['auto', 'kvm', 'tcg']);
    assert.deepEqual(offers('vmstub run -m 1G --accel t'), ['tcg']);
    assert.deepEqual(offers('vmstub image build --arch '), ['aarch64', 'riscv64', 'x86_64']);
    assert.deepEqual(offers('vmstub create web3 --filesystem '), ['btrfs', 'ext4', 'xfs']);
    assert.deepEqual(offers('vmstub start '), ['db2', 'web1']);
    assert.deepEqual(offers('vmstub snapshot '), ['list', 'restore', 'rm', 'save']);
    assert.deepEqual(offers('vmstub disk grow '), ['db2', 'web1']);
    assert.deepEqual(offers('vmstub start --wait-ssh w'), ['web1'], '--wait-ssh takes no separate value');
    assert.deepEqual(offers('vmstub completion '), ['bash', 'fish', 'zsh']);
    assert.deepEqual(offers('vmstub run --cpus '), [], 'a number: nothing to offer, not files');
    assert.ok(offers('vmstub create web3 --').includes('--post-install'));
  });

  it('fish: the same, through complete -C', () => {
    const file = script('fish');
    const offers = (line: string): string[] => {
      const r = spawnSync('fish', ['--no-config', '-c', `source ${file}; complete -C '${line}'`], {
        encoding: 'utf8',
        env: box.env,
      });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[0]!)
        .sort();
    };
    assert.ok(offers('vmstub st').includes('start') && offers('vmstub st').includes('stop'));
    assert.deepEqual(offers('vmstub run --accel '), ['auto', 'kvm', 'tcg']);
    assert.deepEqual(offers('vmstub image '), ['build']);
    assert.ok(offers('vmstub stop ').includes('web1'));
    assert.ok(offers('vmstub run --').includes('--detach'));
  });

  it('zsh: the script loads under compinit and registers _vmstub', () => {
    const file = script('zsh');
    const r = spawnSync(
      'zsh',
      ['-f', '-c', `autoload -U compinit && compinit -u -D && source ${file} && print -r -- $_comps[vmstub]`],
      { encoding: 'utf8', env: box.env },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '_vmstub');
    assert.equal(spawnSync('zsh', ['-n', file]).status, 0, 'zsh -n: the script parses');
  });
});
