import type { Option } from '@commander-js/extra-typings';
import { describeOption, notesOf, optionFlags } from './options.js';
import { commandPath, leafCommands, type AnyCommand } from './program.js';
import { fieldDefaultText, imageFieldDoc, imageFieldRequired, imageFields } from '../image/config.js';
import { defaultText, fieldDecl, fileFields } from '../installer/spec-fields.js';
import { CATALOG } from '../catalog/index.js';
import { distroLabel, installableLabel } from '../catalog/evidence.js';

/**
 * The generated parts of docs/commands.md: each command's option table and the spec's field table, made
 * from the same declarations as --help. Between `<!-- generated: KEY -->` and `<!-- end generated -->`;
 * everything else in the file is written by hand.
 */

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** A Markdown table laid out as prettier lays it out, so the committed file passes `prettier --check`. */
export function markdownTable(header: string[], rows: string[][]): string {
  const cells = [header, ...rows].map((r) => r.map(cell));
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => [...r[i]!].length)));
  const line = (r: string[]) =>
    `| ${r.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  return [
    line(cells[0]!),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

/** Options as `--flag VALUE`, the way a user types them (commander writes `<VALUE>`). */
const shownFlags = (o: Option) => '`' + optionFlags(o).replace(/<([^>]+)>/g, '$1') + '`';

/** The usage line, then the command's own options; install spec flags are in the spec's table. */
function optionTable(cmd: AnyCommand): string {
  const options = cmd.options as readonly Option[];
  const own = options.filter((o) => !notesOf(o).specField);
  const usage = `Usage: \`vmstub ${commandPath(cmd)} ${cmd.usage().replace(/<([^>]+)>/g, '$1')}\``;
  const rows = own.map((o) => [shownFlags(o), describeOption(o)]);
  rows.push(['`-h, --help`', 'show this help']);
  const spec =
    own.length < options.length ? '\n\nAnd the install spec\'s flags (see "The install spec").' : '';
  return `${usage}\n\n${markdownTable(['option', 'what it does'], rows)}${spec}`;
}

function specFieldTable(): string {
  const rows = fileFields.map((k) => {
    const f = fieldDecl(k);
    return [
      '`' + k + '`',
      f.doc + (f.machine ? ' (create only)' : ''),
      defaultText(f) ?? '',
      (f.flags ?? []).map((d) => '`' + d.flags.replace(/<([^>]+)>/g, '$1') + '`').join(', '),
    ];
  });
  return markdownTable(['field', 'what it is', 'default', 'flags'], rows);
}

function imageFieldTable(): string {
  const rows = imageFields.map((k) => [
    '`' + k + '`',
    imageFieldDoc(k),
    imageFieldRequired(k) ? 'required' : (fieldDefaultText(k) ?? ''),
  ]);
  return markdownTable(['field', 'what it is', 'default'], rows);
}

/** What the tests have shown of each catalog entry: the same words as `vmstub distros`. */
function distributionStatusTable(): string {
  const rows = CATALOG.map((d) => [`${d.name} (\`${d.id}\`)`, installableLabel(d.id), distroLabel(d)]);
  return markdownTable(['distribution', 'installed to SSH here', 'furthest a test got, against what'], rows);
}

/** Every generated block, by key: `options of run`, `options of image build`, `spec fields`. */
function generatedBlocks(program: AnyCommand): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const c of leafCommands(program)) blocks.set(`options of ${commandPath(c)}`, optionTable(c));
  blocks.set('spec fields', specFieldTable());
  blocks.set('image fields', imageFieldTable());
  blocks.set('distribution status', distributionStatusTable());
  return blocks;
}

const BLOCK = /<!-- generated: (.+?) -->\n[\s\S]*?<!-- end generated -->/g;

/** The document with each generated block made anew; a marker naming no block is an error. */
export function regenerate(doc: string, program: AnyCommand): string {
  const blocks = generatedBlocks(program);
  return doc.replace(BLOCK, (_, key: string) => {
    const body = blocks.get(key);
    if (body === undefined) throw new Error(`docs: no generated block '${key}'`);
    return `<!-- generated: ${key} -->\n\n${body}\n\n<!-- end generated -->`;
  });
}

/** Commands whose options the document shows nowhere. */
export function undocumented(doc: string, program: AnyCommand): string[] {
  return [...generatedBlocks(program).keys()].filter(
    (k) => k.startsWith('options of ') && !doc.includes(`<!-- generated: ${k} -->`),
  );
}
