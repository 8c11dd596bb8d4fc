import { resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { annotate, jsonOption } from './options.js';
import { printJson } from './output.js';
import { formatSize, parseSize } from '../util/size.js';
import { allocateDisk } from '../vm/allocate.js';
import { growInstanceDisk } from '../vm/disk-grow.js';
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

const grow = () =>
  new Command('grow')
    .summary("grow an instance's data disk, live when it runs, and the installed system's root with it")
    .description(
      "Grow an instance's data disk to SIZE (20G), or by SIZE (+4G); never shrinks, and a refusal changes nothing. A stopped instance's image is grown on the host (raw: sparsely; qcow2: qemu-img resize). A running one's is grown live through QMP block_resize, and then the installed system's root filesystem at once through the guest agent (systemd-growfs, else xfs_growfs, resize2fs or btrfs; the tests grow XFS, ext4 and Btrfs roots of Debian 12, through systemd-growfs). An encrypted root's LUKS container grows first, with the passphrase the host gives the VM; without one, at the next boot. Systems vmstub installed also grow their root at every boot (x-systemd.growfs), so a disk grown while stopped is used from the next start.",
    )
    .argument('<NAME>', 'the instance')
    .argument('<SIZE>', 'the new size (20G), or +SIZE to add (+4G)')
    .addOption(jsonOption('{name, disk, format, previousBytes, bytes, action, live, filesystem, detail}'))
    .action(async (name, sizeText, o) => {
      const r = await growInstanceDisk(name, sizeText);
      if (o.json) {
        printJson(r);
        return;
      }
      if (r.action === 'unchanged') {
        process.stdout.write(`${name}'s disk is ${formatSize(r.bytes)} already\n`);
        return;
      }
      const fs = {
        grown: 'its root filesystem grown at once',
        'next-boot': `its root filesystem grows at the next boot${r.detail ? ` (not at once: ${r.detail})` : ''}`,
        'not-installed': 'not a system vmstub installed: grow its filesystem in the guest',
      }[r.filesystem];
      process.stdout.write(
        `${name}: disk grown from ${formatSize(r.previousBytes)} to ${formatSize(r.bytes)} (${r.format}${r.live ? ', live' : ''}); ${fs}\n`,
      );
    });

export const diskCommands = () => [
  allocate(),
  new Command('disk').summary("an instance's disks").addCommand(grow()),
];
