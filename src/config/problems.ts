/**
 * What the install spec and the image config share as files: YAML read with the line of every node,
 * schema problems in vmstub's words, and all of a file's problems in one line, in file order.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isNode, type Document } from 'yaml';
import type * as z from 'zod/mini';
import { usageError } from '../util/errors.js';

export type Path = readonly PropertyKey[];

export interface Problem {
  path: Path;
  message: string;
}

/** Where a file's values came from, for messages: the file (and the line of each node) and which fields flags set. */
export interface ConfigSource {
  where: string;
  lineOf?: (path: Path) => number | undefined;
  /** Top-level fields a flag set or added to: their problems name the flag, not a line of the file. */
  fromFlags?: ReadonlySet<string>;
  /** The flag that sets a top-level field. */
  flagOf?: (field: string) => string | undefined;
  /** Relative paths in a file are relative to the file. */
  baseDir?: string;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  number: 'a number',
  int: 'a whole number',
};

/** One zod issue as vmstub says it; unions say what their parser said, when one did. */
export function issueProblems(issue: z.core.$ZodIssue, input: unknown): Problem[] {
  const path = issue.path;
  const value = path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k], input);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown field '${k}'` }));
    case 'invalid_type':
      return [
        {
          path,
          message:
            value === undefined
              ? 'is required'
              : issue.expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')
                ? `must be a string (in quotes: '${String(value)}')`
                : `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`,
        },
      ];
    case 'invalid_value':
      return [{ path, message: `'${String(value)}' is not one of ${issue.values.map(String).join(', ')}` }];
    case 'invalid_union': {
      const said = issue.errors.flat().find((e) => e.code === 'custom' || e.code === 'too_small');
      return [{ path, message: said?.message ?? 'is not a valid value' }];
    }
    default:
      // zod's own wording ("Invalid input") says less than vmstub's checks; every check here has its own.
      return [{ path, message: issue.message === 'Invalid input' ? 'is not a valid value' : issue.message }];
  }
}

export function fieldPath(path: Path): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

/** Problems in file order (by line where the file has them), each with the field, and its line or flag. */
export function formatProblems(problems: Problem[], src: ConfigSource): string {
  const located = problems.map((p, order) => {
    const top = String(p.path[0] ?? '');
    // Which flag set a field is worth saying only when a file was read too.
    const flag = src.lineOf && src.fromFlags?.has(top) ? src.flagOf?.(top) : undefined;
    const line = flag ? undefined : src.lineOf?.(p.path);
    const field = fieldPath(p.path);
    const text = field ? `${field}: ${p.message}` : p.message;
    return { text: text + (flag ? ` (${flag})` : line ? ` (line ${line})` : ''), line, order };
  });
  located.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity) || a.order - b.order);
  const texts = located.map((l) => l.text);
  return texts.length === 1
    ? `${src.where}: ${texts[0]}`
    : `${src.where}: ${texts.length} problems: ${texts.join('; ')}`;
}

/**
 * A YAML file (JSON is YAML too) that must hold a mapping. One clear line for a file that cannot be
 * read or parsed; the lines of its nodes are kept, so problems found later name them.
 */
export function readYamlMapping(
  path: string,
  example: string,
  version: '1.1' | '1.2' = '1.2',
): { value: Record<string, unknown>; lineOf: (path: Path) => number | undefined } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, version });
  if (doc.errors.length)
    throw usageError(`${path} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const value: unknown = doc.toJS();
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw usageError(`${path} must be a mapping (${example}, ...)`);
  return { value: value as Record<string, unknown>, lineOf: lineFinder(doc, lines) };
}

/** The line of the node at a path, or of the nearest enclosing node the file has (a missing field's parent). */
function lineFinder(doc: Document, lines: LineCounter): (path: Path) => number | undefined {
  return (path) => {
    for (let n = path.length; n > 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return lines.linePos(node.range[0]).line;
      // A key whose value is missing or null: the key's own position.
      const parent = n > 1 ? doc.getIn(path.slice(0, n - 1) as unknown[], true) : doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find(
          (i) => isNode(i.key) && (i.key as { value?: unknown }).value === path[n - 1],
        );
        if (pair && isNode(pair.key) && pair.key.range) return lines.linePos(pair.key.range[0]).line;
      }
    }
    return undefined;
  };
}
