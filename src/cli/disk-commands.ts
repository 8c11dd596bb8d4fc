import { resolve } from 'node:path';
import { flag, str, type ParsedArgs } from './args.js';
import { printJson } from './output.js';
import type { Command } from './vm-commands.js';
import { ExitCode, usageError } from '../util/errors.js';
import { formatSize, parseSize } from '../util/size.js';
import { allocateDisk } from '../vm/allocate.js';

function formatOption(a: ParsedArgs): 'raw' | 'qcow2' | undefined {
  const f = str(a, 'format');
  if (f === undefined || f === 'raw' || f === 'qcow2') return f;
  throw usageError(`--format '${f}' is not raw or qcow2`);
}

const allocate: Command = {
  spec: {
    name: 'allocate',
    summary: 'Create a disk image, or grow one. Never shrinks or truncates.',
    usage: '[options] FILE SIZE',
    positionals: [{ name: 'FILE' }, { name: 'SIZE' }],
    details: 'SIZE has a unit: 8G, 512M, 1.5T. New raw images are sparse: they use no space until written.',
    options: [
      {
        name: 'format',
        takes: 'value',
        valueName: 'raw|qcow2',
        help: 'image format for a new file (default raw)',
      },
      { name: 'json', takes: 'flag', help: 'machine-readable output' },
    ],
  },
  async run(a) {
    const [file, sizeText] = a.positionals as [string, string];
    const bytes = parseSize(sizeText);
    const result = await allocateDisk(resolve(file), bytes, formatOption(a));
    if (flag(a, 'json')) printJson(result);
    else if (result.action === 'unchanged')
      process.stdout.write(`${file} is already ${formatSize(result.bytes)} (${result.format})\n`);
    else if (result.action === 'grown') {
      process.stdout.write(
        `${file} grown from ${formatSize(result.previousBytes!)} to ${formatSize(result.bytes)} (${result.format})\n`,
      );
    } else
      process.stdout.write(
        `${file} created: ${formatSize(result.bytes)} ${result.format}${result.format === 'raw' ? ', sparse' : ''}\n`,
      );
    return ExitCode.ok;
  },
};

export const diskCommands: Command[] = [allocate];
