// Writes the generated parts of docs/commands.md and docs/images.md, and the JSON Schemas in schema/,
// from the declarations
// (npm run docs). test/unit/docs.test.ts fails when the committed files are stale.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { regenerate } from '../dist/src/cli/docs.js';
import { buildProgram } from '../dist/src/cli/program.js';
import { specJsonSchema } from '../dist/src/installer/spec-fields.js';
import { imageJsonSchema } from '../dist/src/image/config.js';

for (const doc of ['docs/commands.md', 'docs/images.md', 'README.md'])
  writeFileSync(doc, regenerate(readFileSync(doc, 'utf8'), buildProgram()));
mkdirSync('schema', { recursive: true });
writeFileSync('schema/spec.schema.json', JSON.stringify(specJsonSchema(), null, 2) + '\n');
writeFileSync('schema/image.schema.json', JSON.stringify(imageJsonSchema(), null, 2) + '\n');
console.log('wrote docs/commands.md, docs/images.md, README.md and schema/*.schema.json');
