import { existsSync, readFileSync } from 'node:fs';
import { Command } from '@commander-js/extra-typings';
import { jsonOption } from './options.js';
import { printJson } from './output.js';
import { conflictError, usageError } from '../util/errors.js';
import { validateName } from '../vm/definition.js';
import { hasInclude, installInclude, sshConfigInclude, userSshConfig } from '../vm/ssh-config.js';
import { instancePaths, readState } from '../vm/store.js';

/** One instance's block, as written at its last start. */
function instanceBlock(name: string): { file: string; text: string; port: number | undefined } {
  validateName(name);
  const paths = instancePaths(name);
  if (!existsSync(paths.dir)) throw conflictError(`no instance named ${name}`);
  if (!existsSync(paths.sshConfig))
    throw conflictError(
      `${name} has no ssh config: it is written when the instance starts with a user-mode network (vmstub start ${name})`,
    );
  return {
    file: paths.sshConfig,
    text: readFileSync(paths.sshConfig, 'utf8'),
    port: readState(paths).sshPort,
  };
}

export const sshConfigCommand = () =>
  new Command('ssh-config')
    .summary("print an instance's OpenSSH config block, or the Include line that makes `ssh NAME` work")
    .description(
      "Every instance that starts with a user-mode network gets an OpenSSH config block (Host NAME and vmstub-NAME: 127.0.0.1, the forwarded port, the ssh user, the instance's own known_hosts with strict checking, its key), rewritten at each start and removed with the instance. With NAME: print that block. Without: print the Include line for ~/.ssh/config that takes in every instance's block, so ssh, scp, rsync and sftp reach an instance by its name; --install puts it there.",
    )
    .argument('[NAME]', 'the instance')
    .option('--install', 'put the Include line at the top of ~/.ssh/config, if it is not there yet')
    .addOption(
      jsonOption('{include, userConfig, installed} without NAME; {name, file, port, config} with it'),
    )
    .action((name, o) => {
      if (name !== undefined) {
        if (o.install)
          throw usageError('ssh-config: --install takes no NAME: one Include line covers every instance');
        const block = instanceBlock(name);
        if (o.json) printJson({ name, file: block.file, port: block.port ?? null, config: block.text });
        else process.stdout.write(block.text);
        return;
      }
      const include = sshConfigInclude();
      const userConfig = userSshConfig();
      const changed = o.install ? installInclude(userConfig, include) : false;
      const installed = existsSync(userConfig) && hasInclude(readFileSync(userConfig, 'utf8'), include);
      if (o.json) printJson({ include, userConfig, installed });
      else if (o.install)
        process.stdout.write(
          changed ? `added to ${userConfig}: ${include}\n` : `${userConfig} already has: ${include}\n`,
        );
      else process.stdout.write(`${include}\n`);
    });
