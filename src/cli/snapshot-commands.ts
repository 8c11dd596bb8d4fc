import { Command } from '@commander-js/extra-typings';
import { formatTable, printJson } from './output.js';
import { jsonOption } from './options.js';
import { conflictError } from '../util/errors.js';
import { defaultTag, listSnapshots, removeSnapshot, restoreSnapshot, saveSnapshot } from '../vm/snapshots.js';
import { loadDefinition } from '../vm/store.js';

const save = () =>
  new Command('save')
    .summary("save a stopped instance's data disk as it is now, under a tag")
    .description(
      "Save a stopped instance's data disk as it is now: a qcow2 internal snapshot, which copies nothing. The raw disk create made is first frozen read-only under a qcow2 overlay in the instance (as clone does); a raw disk of your own (run --data) is refused.",
    )
    .argument('<NAME>', 'the instance')
    .argument('[TAG]', "the snapshot's name (default snap-YYYYMMDD-HHMMSS)")
    .addOption(jsonOption('the snapshot: {tag, date}'))
    .action(async (name, tag, o) => {
      const saved = await saveSnapshot(name, tag ?? defaultTag());
      if (o.json) printJson(saved);
      else process.stdout.write(`${name}: saved snapshot ${saved.tag}\n`);
    });

const list = () =>
  new Command('list')
    .summary("an instance's snapshots, oldest first")
    .argument('<NAME>', 'the instance')
    .addOption(jsonOption('[{tag, date}]'))
    .action(async (name, o) => {
      const def = loadDefinition(name);
      if (!def.data) throw conflictError(`${name} has no data disk, so no snapshots`);
      const all = await listSnapshots(def.data);
      if (o.json) printJson(all);
      else if (!all.length) process.stdout.write(`${name} has no snapshots\n`);
      else
        process.stdout.write(
          formatTable(
            ['TAG', 'SAVED'],
            all.map((s) => [s.tag, s.date]),
          ),
        );
    });

const restore = () =>
  new Command('restore')
    .summary("give a stopped instance's data disk back exactly as a snapshot saved it")
    .description(
      "Give a stopped instance's data disk back exactly as the snapshot saved it, its size included. What the disk holds now is first saved as a snapshot of its own (before-TAG), so a restore loses nothing unless --discard-current.",
    )
    .argument('<NAME>', 'the instance')
    .argument('<TAG>', 'the snapshot')
    .option('--discard-current', 'do not keep what the disk holds now')
    .addOption(jsonOption('{restored, kept}: kept is the snapshot of what the disk held before, if any'))
    .action(async (name, tag, o) => {
      const r = await restoreSnapshot(name, tag, o.discardCurrent === true);
      if (o.json) printJson({ restored: r.restored, kept: r.kept ?? null });
      else
        process.stdout.write(
          `${name}: restored ${r.restored}${r.kept ? `; what the disk held before is snapshot ${r.kept}` : ''}\n`,
        );
    });

const rm = () =>
  new Command('rm')
    .summary('delete a snapshot of a stopped instance')
    .argument('<NAME>', 'the instance')
    .argument('<TAG>', 'the snapshot')
    .addOption(jsonOption('{removed}'))
    .action(async (name, tag, o) => {
      await removeSnapshot(name, tag);
      if (o.json) printJson({ removed: tag });
      else process.stdout.write(`${name}: deleted snapshot ${tag}\n`);
    });

export const snapshotCommands = () => [
  new Command('snapshot')
    .summary("save and restore a stopped instance's data disk")
    .addCommand(save())
    .addCommand(list())
    .addCommand(restore())
    .addCommand(rm()),
];
