import { resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { annotate, jsonOption } from './options.js';
import { printJson } from './output.js';
import { formatSize, parseSize } from '../util/size.js';
import { allocateDisk } from '../vm/allocate.js';
import { DISK_FORMATS } from '../vm/definition.js';

const allocate = () =>
  new Command('allocate')
    .summary('create a disk image, or grow one; never shrinks or truncates')
    .description(
      'Create a disk image, or grow one. Never shrinks or truncates. SIZE has a unit: 8G, 512M, 1.5T. New raw images are sparse: they use no space until written.',
    )
    .argument('<FILE>', 'the disk image')
    .argument('<SIZE>', 'its size, with a unit (8G, 512M)')
    .addOption(
      annotate(new Option('--format <FORMAT>', 'image format for a new file').choices(DISK_FORMATS), {
        defaultText: 'raw',
      }),
    )
    .addOption(jsonOption('what happened as JSON: {path, action, format, bytes, previousBytes}'))
    .action(async (file, sizeText, o) => {
      const bytes = parseSize(sizeText);
      const result = await allocateDisk(resolve(file), bytes, o.format);
      if (o.json) printJson(result);
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
    });

export const diskCommands = () => [allocate()];
