/** The image configs and hooks the image builder's tests build: a small Debian 12 image and its hook. */
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sandbox } from './cli.js';

/** A hook that writes marker to the image's /etc/issue (and exits with exit, saying so when not 0). */
export function writeHook(dir: string, name: string, marker: string, exit = 0): void {
  const hook = join(dir, name);
  writeFileSync(
    hook,
    [
      '#!/bin/sh',
      'set -eu',
      `echo "${marker}" > "$1/etc/issue"`,
      'echo "noninteractive: $DEBIAN_FRONTEND; proc mounted: $(test -e "$1/proc/self" && echo yes)"',
      ...(exit ? [`echo "giving up" >&2`, `exit ${exit}`] : []),
      '',
    ].join('\n'),
  );
  chmodSync(hook, 0o755);
}

/** An image config in dir (Debian 12 unless distro says): the packages, the hook, a sudo user alice, the formats, and more lines. */
export function writeConfig(
  dir: string,
  file: string,
  name: string,
  hook: string,
  formats: string[],
  packages = ['less'],
  more: string[] = [],
  distro = 'debian12',
): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    [
      `name: ${name}`,
      `distro: ${distro}`,
      `packages: [${packages.join(', ')}]`,
      `hook: ${hook}`,
      'users:',
      '  - name: alice',
      '    sudo: true',
      '    groups: [adm, builders]',
      '    shell: /bin/sh',
      `formats: [${formats.join(', ')}]`,
      ...more,
      '',
    ].join('\n'),
  );
  return path;
}

/** Boots a live ISO (or the disk it was written to) by vmstub run, to the hook's marker; then stops it. */
export async function bootIso(box: Sandbox, name: string, boot: string[], timeoutMs: number): Promise<void> {
  const r = box.run(['run', '--detach', '--name', name, ...boot]);
  assert.equal(r.code, 0, r.stderr);
  await box.waitForConsole(name, 'the live system to log in', 'VMSTUB-HOOK-ONE', timeoutMs);
  assert.match(box.consoleLog(name), /root=live:CDLABEL=LIVE/);
  box.run(['stop', '--force', name]);
}
