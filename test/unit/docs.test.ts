import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { markdownTable, regenerate, undocumented } from '../../src/cli/docs.js';
import { buildProgram } from '../../src/cli/program.js';

const DOC = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'), 'docs', 'commands.md');

test('docs/commands.md: the option tables are the declarations (npm run docs writes them)', () => {
  const doc = readFileSync(DOC, 'utf8');
  assert.equal(regenerate(doc, buildProgram()), doc, 'docs/commands.md is stale: run npm run docs');
});

test('docs/commands.md shows the options of every command', () => {
  assert.deepEqual(undocumented(readFileSync(DOC, 'utf8'), buildProgram()), []);
});

test('tables escape pipes and align as prettier does', () => {
  assert.equal(
    markdownTable(['a', 'b'], [['`x|y`', 'long text']]),
    '| a      | b         |\n| ------ | --------- |\n| `x\\|y` | long text |',
  );
});
