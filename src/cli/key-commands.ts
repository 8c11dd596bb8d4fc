/** vmstub key: who keeps an encrypted root's passphrase, the host (unattended boots) or no one (typed). */
import { existsSync, rmSync } from 'node:fs';
import { Command } from '@commander-js/extra-typings';
import { jsonOption } from './options.js';
import { note, printJson } from './output.js';
import { terminalPassphrase } from './prompt.js';
import { fwCfgName } from '../events/protocol.js';
import {
  passphraseFwCfg,
  passphraseOpens,
  passphraseFromFile,
  writePassphrase,
} from '../installer/luks-key.js';
import { conflictError, usageError } from '../util/errors.js';
import { editDefinition, instancePaths, loadDefinition } from '../vm/store.js';
import type { VmDefinition } from '../vm/definition.js';

const LUKS_ITEM = fwCfgName('luksPassphrase');

/** The instance's definition; refused when its root is not encrypted. */
function encryptedInstance(name: string): VmDefinition {
  const def = loadDefinition(name);
  if (!def.encryptedRoot)
    throw conflictError(`${name}'s root is not encrypted (vmstub create --encrypt makes one)`);
  return def;
}

const forget = () =>
  new Command('forget')
    .summary('the host forgets the passphrase: every boot from now on asks for it on the console')
    .argument('<NAME>', 'an instance with an encrypted root')
    .addOption(jsonOption('{name, unlock}'))
    .action(async (name, o) => {
      encryptedInstance(name);
      await editDefinition(name, (def) => {
        def.fwCfg = def.fwCfg.filter((i) => i.name !== LUKS_ITEM);
        def.encryptedRoot = { unlock: 'console' };
      });
      rmSync(instancePaths(name).luksPassphrase, { force: true });
      if (o.json) printJson({ name, unlock: 'console' });
      else
        note(
          `${name}: the host keeps no passphrase; from the next start, type it at the console (vmstub console ${name})`,
        );
    });

const keep = () =>
  new Command('keep')
    .summary('the host keeps the passphrase (owner-only) and gives it to every boot: unattended starts')
    .description(
      "The passphrase is checked against the disk's LUKS header on the host (cryptsetup --test-passphrase) before it is kept; one that does not open it is refused and nothing changes.",
    )
    .argument('<NAME>', 'an instance with an encrypted root')
    .option('--key-file <FILE>', 'the passphrase: the first line of FILE (else asked at the terminal)')
    .addOption(jsonOption('{name, unlock, passphraseFile}'))
    .action(async (name, o) => {
      const def = encryptedInstance(name);
      if (!def.data || !existsSync(def.data.path)) throw conflictError(`${name}'s data disk is gone`);
      const ask = terminalPassphrase();
      if (!o.keyFile && !ask)
        throw usageError('give the passphrase with --key-file FILE (there is no terminal to ask at)');
      const passphrase = o.keyFile ? passphraseFromFile(o.keyFile) : await ask!('Passphrase: ');
      const paths = instancePaths(name);
      if (!(await passphraseOpens(def.data, passphrase, paths.dir)))
        throw usageError(`that passphrase does not open ${name}'s root; nothing was changed`);
      writePassphrase(paths.luksPassphrase, passphrase);
      await editDefinition(name, (d) => {
        d.fwCfg = [...d.fwCfg.filter((i) => i.name !== LUKS_ITEM), passphraseFwCfg(paths.luksPassphrase)];
        d.encryptedRoot = { unlock: 'host' };
      });
      note(
        `${name}: the host keeps the passphrase (${paths.luksPassphrase}, owner-only); starts unlock it unattended`,
      );
    });

export const keyCommands = () => [
  new Command('key')
    .summary("who keeps an encrypted root's passphrase: the host, or no one (typed at each boot)")
    .addCommand(keep())
    .addCommand(forget()),
];
