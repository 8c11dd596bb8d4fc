import { resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { annotate, jsonOption } from './options.js';
import { note, printJson } from './output.js';
import { imagesDir } from '../image/locations.js';
import { buildStub, DEFAULT_DEBIAN_MIRROR, DEFAULT_DEBIAN_SECURITY_MIRROR } from '../image/stub.js';
import { ARCHES, parseArch } from '../util/arch.js';
import { usageError } from '../util/errors.js';
import { formatSize } from '../util/size.js';
import { hostArch } from '../vm/accel.js';

const build = () =>
  new Command('build')
    .summary('build a system image; for now the stub: vmstub image build stub')
    .description(
      'The stub is a Debian 13 system image (squashfs with boot/kernel and boot/initramfs) that installs distributions and hands over to them. Its root filesystem is cached; a rebuild after a change to vmstub itself only squashes again. SOURCE_DATE_EPOCH is honoured.',
    )
    .argument('<IMAGE>', "the image to build: 'stub'")
    .addOption(
      annotate(new Option('--arch <ARCH>', 'the architecture of the image').choices(ARCHES), {
        defaultText: "this machine's",
      }),
    )
    .addOption(
      annotate(new Option('--out <DIR>', 'where stub-ARCH.squashfs goes'), { defaultText: imagesDir() }),
    )
    .addOption(new Option('--mirror <URL>', 'Debian mirror').default(DEFAULT_DEBIAN_MIRROR))
    .addOption(
      new Option('--security-mirror <URL>', 'Debian security mirror').default(DEFAULT_DEBIAN_SECURITY_MIRROR),
    )
    .addOption(jsonOption('the result as JSON: {image, bytes, sha256, ...}'))
    .action(async (image, o) => {
      if (image !== 'stub') throw usageError(`image build: unknown image '${image}' (only 'stub' so far)`);
      const result = await buildStub({
        arch: parseArch(o.arch ?? hostArch() ?? 'x86_64'),
        outDir: resolve(o.out ?? imagesDir()),
        mirrors: { mirror: o.mirror, securityMirror: o.securityMirror },
        progress: note,
      });
      if (o.json) printJson(result);
      else process.stdout.write(`${result.image}: ${formatSize(result.bytes)}, sha256 ${result.sha256}\n`);
    });

export const imageCommands = () => [new Command('image').summary('build system images').addCommand(build())];
