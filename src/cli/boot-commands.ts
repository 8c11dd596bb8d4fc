import type { Command } from './vm-commands.js';
import { runHandoff } from '../boot/handoff.js';
import { ExitCode } from '../util/errors.js';

const handoff: Command = {
  spec: {
    name: 'boot handoff',
    summary: '(run by the stub at boot) kexec into the system installed on the data disk or a share, if any.',
    usage: '',
    positionals: [],
    options: [],
    details:
      'Looks at /dev/disk/by-id/virtio-data (whole disk or partitions, LUKS opened with the passphrase from\n' +
      'fw_cfg opt/org.vmstub/luks-passphrase or typed on the console), then a virtiofs and a 9p share tagged\n' +
      'fs, read-only. Any failure is said and the stub boots on. vmstub.nokexec on the kernel command line\n' +
      'skips it.',
  },
  async run() {
    await runHandoff((line) => process.stdout.write(`vmstub-handoff: ${line}\n`));
    return ExitCode.ok;
  },
};

export const bootCommands: Command[] = [handoff];
