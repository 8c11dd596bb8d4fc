/**
 * The Debian 12 system the create tests install, as a user writes it: part of the spec in a file
 * (machine fields too), a cloud-init user-data file, and the rest as flags on top. The e2e create and
 * the slow tier's install in the stub make it the same way, so that their systems can be compared.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface WebSystem {
  /** The host port the spec file forwards to the guest's port 22. */
  forwardPort: number;
  /** --config, --user-data and the flags on top, for create and plan. */
  systemArgs: string[];
}

export function webSystem(home: string): WebSystem {
  const forwardPort = 20_000 + (process.pid % 20_000);
  const specFile = join(home, 'web1.yaml');
  writeFileSync(
    specFile,
    [
      '# yaml-language-server: $schema=spec.schema.json',
      'distro: debian12',
      'memory: 2G',
      'cpus: 2',
      `forwards: ['127.0.0.1:${forwardPort}:22']`,
    ].join('\n') + '\n',
  );
  // Time zone, locale (a flag overrides it), keyboard, a user with groups (one the system lacks) and a
  // shell, a package, files (one of bob's, one gzipped), commands at the first boot and at every boot.
  const userData = join(home, 'user-data.yaml');
  const hello = gzipSync('#!/bin/sh\necho hello from write_files\n').toString('base64');
  writeFileSync(
    userData,
    [
      '#cloud-config',
      'timezone: Asia/Tokyo',
      // --locale on the command line wins over the user-data's.
      'locale: fr_FR.UTF-8',
      'keyboard: {layout: de}',
      'packages: [tree]',
      'users:',
      '  - name: bob',
      '    groups: [adm, builders]',
      '    shell: /bin/sh',
      'write_files:',
      '  - path: /etc/vmstub-test/notes.txt',
      '    content: "for bob\\n"',
      '    owner: bob:builders',
      "    permissions: '0640'",
      '  - path: /usr/local/bin/hello',
      '    encoding: gz+b64',
      `    content: ${hello}`,
      "    permissions: '0755'",
      'runcmd:',
      `  - [sh, -c, 'echo "ran once" >> /var/tmp/runcmd.log']`,
      '  - hello > /var/tmp/hello.out',
      'bootcmd:',
      '  - echo boot >> /var/tmp/bootcmd.log',
      '',
    ].join('\n'),
  );
  return {
    forwardPort,
    systemArgs: [
      ...['--config', specFile, '--user-data', userData],
      ...['--locale', 'de_DE.UTF-8', '--user', 'alice'],
    ],
  };
}

/**
 * How many files the package cache served, from its lines: one per run of the cache (a host bootstrap,
 * or a boot of the stub that ran the install), so a stub booted once more adds a line of its own.
 */
export const cachedDownloads = (stderr: string): number =>
  [...stderr.matchAll(/package cache: (\d+) files from the cache \([^)]*\), (\d+) from the mirror/g)].reduce(
    (sum, m) => sum + Number(m[1]) + Number(m[2]),
    0,
  );

/** Every line of --json output is one JSON object: NDJSON from the first line to the last. */
export const ndjson = (stdout: string): { type: string; step?: string }[] =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((l, i) => {
      try {
        return JSON.parse(l) as { type: string; step?: string };
      } catch {
        return assert.fail(`line ${i + 1} of --json output is not JSON: ${l}`);
      }
    });
