import { Command } from '@commander-js/extra-typings';
import { jsonOption } from './options.js';
import { printJson } from './output.js';
import { runHandoff } from '../boot/handoff.js';

const handoff = () =>
  new Command('handoff')
    .summary('(run by the stub at boot) kexec into the system installed on the data disk or a share, if any')
    .description(
      'Looks at /dev/disk/by-id/virtio-data (whole disk or partitions, LUKS opened with the passphrase from fw_cfg opt/org.vmstub/luks-passphrase or typed on the console), then a virtiofs share tagged fs, read-only. Any failure is said and the stub boots on. vmstub.nokexec on the kernel command line skips it.',
    )
    .addOption(
      jsonOption(
        'the outcome as JSON ({outcome}: nothing-installed, skipped or failed; a successful kexec never returns); progress goes to stderr',
      ),
    )
    .action(async (o) => {
      const write = (line: string) =>
        (o.json ? process.stderr : process.stdout).write(`vmstub-handoff: ${line}\n`);
      const outcome = await runHandoff(write);
      if (o.json) printJson({ outcome });
    });

export const bootCommands = () => [
  new Command('boot').summary('what the stub runs at boot').addCommand(handoff()),
];
