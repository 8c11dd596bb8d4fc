import { Command } from '@commander-js/extra-typings';
import { note, printJson } from './output.js';
import { jsonOption } from './options.js';
import { requireTool, runChecked } from '../util/exec.js';
import { usageError } from '../util/errors.js';
import {
  disableService,
  enableService,
  serviceScope,
  systemdRuns,
  type ServiceChange,
  transientInstall,
  type ServiceScope,
} from '../vm/service.js';
import { selfCommand } from '../vm/launch.js';
import { loadDefinition } from '../vm/store.js';

async function systemctl(scope: ServiceScope, args: string[]): Promise<void> {
  await runChecked(requireTool('systemctl', 'systemd'), [
    ...(scope.kind === 'user' ? ['--user'] : []),
    ...args,
  ]);
}

/** Reload (and with --now start or stop) where systemd runs; say what was done either way. */
async function apply(change: ServiceChange, now: boolean, json: boolean): Promise<void> {
  const scope = serviceScope();
  const live = systemdRuns(scope);
  if (now && !live)
    throw usageError(
      `--now: systemd is not running here, so there is no manager to ${change.enabled ? 'start' : 'stop'} ${change.unit}`,
    );
  if (live) {
    await systemctl(scope, ['daemon-reload']);
    if (now) await systemctl(scope, [change.enabled ? 'start' : 'stop', change.unit]);
    if (scope.kind === 'user' && change.enabled)
      note('user services start at login; to start them at boot: loginctl enable-linger');
  } else
    note(
      `systemd is not running here: the unit files are in place (${change.templatePath}) for when it does`,
    );
  if (json) {
    printJson({ ...change, scope: scope.kind, systemd: live, now });
    return;
  }
  const what = change.enabled
    ? `${change.unit} is enabled: the VM starts with the ${scope.kind === 'system' ? 'host' : "user's session"} and stops cleanly with it`
    : `${change.unit} is disabled`;
  process.stdout.write(`${what}${change.changed ? '' : ' (it was already)'}\n`);
}

const enable = () =>
  new Command('enable')
    .summary('start an instance when the host boots, and stop it cleanly when it shuts down (systemd)')
    .description(
      "Start an instance when the host boots and stop it cleanly when the host shuts down: the systemd template unit vmstub@.service (written or refreshed in /etc/systemd/system, or for other users in ~/.config/systemd/user) and its instance vmstub@NAME.service linked into multi-user.target (default.target), as systemctl enable does. The unit runs vmstub start NAME (Type=forking: ready once QEMU runs under its supervisor, the unit's main process) and vmstub stop NAME (the guest is asked first, within its stop timeout). Tested here without systemd running: the unit passes systemd-analyze verify and its commands are run as systemd would run them; no systemd has started it in the tests.",
    )
    .argument('<NAME>', 'the instance')
    .option('--now', 'also start it now (where systemd runs)')
    .addOption(
      jsonOption('{unit, enabled, changed, wroteTemplate, templatePath, linkPath, scope, systemd, now}'),
    )
    .action(async (name, o) => {
      loadDefinition(name);
      const { node, script } = selfCommand();
      const transient = transientInstall(script);
      if (transient)
        note(
          `the unit runs ${script}, and ${transient}: enable ${name} again from a vmstub that stays where it is (a checkout's dist/vmstub.cjs, a global install)`,
        );
      await apply(enableService(name, [node, script]), o.now === true, o.json === true);
    });

const disable = () =>
  new Command('disable')
    .summary('no longer start an instance with the host')
    .argument('<NAME>', 'the instance')
    .option('--now', 'also stop it now (where systemd runs)')
    .addOption(jsonOption('{unit, enabled, changed, templatePath, linkPath, scope, systemd, now}'))
    .action(async (name, o) => {
      loadDefinition(name);
      await apply(disableService(name), o.now === true, o.json === true);
    });

export const serviceCommands = () => [
  new Command('service')
    .summary('start instances with the host (systemd units)')
    .addCommand(enable())
    .addCommand(disable()),
];
