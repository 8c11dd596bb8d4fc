import { resolve } from 'node:path';
import { flag, str } from './args.js';
import { note, printJson } from './output.js';
import type { Command } from './vm-commands.js';
import { parseArch } from '../image/debian-arch.js';
import { imagesDir } from '../image/locations.js';
import { buildStub, DEFAULT_DEBIAN_MIRROR, DEFAULT_DEBIAN_SECURITY_MIRROR } from '../image/stub.js';
import { ExitCode, usageError } from '../util/errors.js';
import { formatSize } from '../util/size.js';

const buildStubCmd: Command = {
  spec: {
    name: 'image build',
    summary: 'Build a system image; for now the stub: vmstub image build stub.',
    usage: '[options] stub',
    positionals: [{ name: 'IMAGE' }],
    details:
      'The stub is a Debian 13 system image (squashfs with boot/kernel and boot/initramfs) that installs\n' +
      'distributions and hands over to them. Its root filesystem is cached; a rebuild after a change to\n' +
      'vmstub itself only squashes again. SOURCE_DATE_EPOCH is honoured.',
    options: [
      { name: 'arch', takes: 'value', valueName: 'ARCH', help: 'x86_64 (default), aarch64 or riscv64' },
      {
        name: 'out',
        takes: 'value',
        valueName: 'DIR',
        help: `where stub-ARCH.squashfs goes (default ${imagesDir()})`,
      },
      {
        name: 'mirror',
        takes: 'value',
        valueName: 'URL',
        help: `Debian mirror (default ${DEFAULT_DEBIAN_MIRROR})`,
      },
      {
        name: 'security-mirror',
        takes: 'value',
        valueName: 'URL',
        help: `Debian security mirror (default ${DEFAULT_DEBIAN_SECURITY_MIRROR})`,
      },
      { name: 'json', takes: 'flag', help: 'machine-readable result' },
    ],
  },
  async run(a) {
    if (a.positionals[0] !== 'stub')
      throw usageError(`image build: unknown image '${a.positionals[0]}' (only 'stub' so far)`);
    const result = await buildStub({
      arch: parseArch(str(a, 'arch') ?? 'x86_64'),
      outDir: resolve(str(a, 'out') ?? imagesDir()),
      mirrors: {
        mirror: str(a, 'mirror') ?? DEFAULT_DEBIAN_MIRROR,
        securityMirror: str(a, 'security-mirror') ?? DEFAULT_DEBIAN_SECURITY_MIRROR,
      },
      progress: note,
    });
    if (flag(a, 'json')) printJson(result);
    else process.stdout.write(`${result.image}: ${formatSize(result.bytes)}, sha256 ${result.sha256}\n`);
    return ExitCode.ok;
  },
};

export const imageCommands: Command[] = [buildStubCmd];
