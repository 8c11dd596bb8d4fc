import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { markdownTable, regenerate, undocumented } from '../../src/cli/docs.js';
import { buildProgram } from '../../src/cli/program.js';

const DOCS = join(resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..'), 'docs');
const DOC = join(DOCS, 'commands.md');

test('docs/commands.md: the option tables are the declarations (npm run docs writes them)', () => {
  const doc = readFileSync(DOC, 'utf8');
  assert.equal(regenerate(doc, buildProgram()), doc, 'docs/commands.md is stale: run npm run docs');
});

test('docs/images.md: the config field table is the declaration (npm run docs writes it)', () => {
  const doc = readFileSync(join(DOCS, 'images.md'), 'utf8');
  assert.match(doc, /<!-- generated: image fields -->/);
  assert.equal(regenerate(doc, buildProgram()), doc, 'docs/images.md is stale: run npm run docs');
});

test('README.md: the status of each distribution is what the tests recorded (npm run docs writes it)', () => {
  const readme = readFileSync(join(DOCS, '..', 'README.md'), 'utf8');
  assert.match(readme, /<!-- generated: distribution status -->/);
  assert.equal(regenerate(readme, buildProgram()), readme, 'README.md is stale: run npm run docs');
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
