/**
 * Commands the new system runs at boot (a spec's firstBoot and everyBoot; cloud-init's runcmd and
 * bootcmd): a script each, run by a systemd one-shot unit. As with cloud-init, a failing command does
 * not stop the ones after it; the first-boot unit fails when the last one does.
 */

const STATE = '/var/lib/vmstub';

export const FIRST_BOOT_UNIT = 'vmstub-first-boot.service';
export const EVERY_BOOT_UNIT = 'vmstub-every-boot.service';
export const FIRST_BOOT_SCRIPT = `${STATE}/first-boot`;
export const EVERY_BOOT_SCRIPT = `${STATE}/every-boot`;
/** Written when the first-boot commands have run, failed or not: they run once, as runcmd does. */
export const FIRST_BOOT_DONE = `${STATE}/first-boot.done`;

export const bootScript = (commands: readonly string[]): string =>
  ['#!/bin/sh', '# vmstub: written by the installer from the spec', ...commands, ''].join('\n');

/** Once, after the network is online; its output goes to the journal and the console. */
export const firstBootUnit = (): string => `[Unit]
Description=vmstub first-boot commands
Wants=network-online.target
After=network-online.target
ConditionPathExists=!${FIRST_BOOT_DONE}

[Service]
Type=oneshot
ExecStart=/bin/sh ${FIRST_BOOT_SCRIPT}
ExecStopPost=/bin/sh -c ': > ${FIRST_BOOT_DONE}'
StandardOutput=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
`;

/** Every boot, once local filesystems are mounted and before any network is configured. */
export const everyBootUnit = (): string => `[Unit]
Description=vmstub every-boot commands
DefaultDependencies=no
Wants=network-pre.target
After=local-fs.target systemd-tmpfiles-setup.service
Before=network-pre.target sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
# Active once run: a later transaction that pulls in sysinit.target's wants does not run it again.
RemainAfterExit=yes
ExecStart=/bin/sh ${EVERY_BOOT_SCRIPT}
StandardOutput=journal+console

[Install]
WantedBy=sysinit.target
`;

/**
 * A shell command (run over SSH, by any user) that returns once what the first boot runs has run:
 * the system's own cloud-init (seeded), then the first-boot commands. 0 when all ended well. Before
 * its start job runs, the first-boot unit is inactive without the done file; after, inactive with it,
 * or failed. None when the first boot runs nothing.
 */
export function waitForFirstBoot(spec: { firstBoot: string[]; userData?: string }): string | undefined {
  const waits: string[] = [];
  if (spec.userData) waits.push('cloud-init status --wait >/dev/null');
  if (spec.firstBoot.length)
    waits.push(
      `while :; do case "$(systemctl show -p ActiveState ${FIRST_BOOT_UNIT})" in ` +
        `*=failed) exit 1 ;; *=inactive) [ -e ${FIRST_BOOT_DONE} ] && exit 0 ;; esac; sleep 2; done`,
    );
  return waits.length ? waits.map((w) => `( ${w} )`).join(' && ') : undefined;
}

/** One command line from an argument list, each argument quoted for /bin/sh. */
export function shellLine(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}
