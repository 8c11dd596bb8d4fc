/**
 * The slow tier: `vmstub create --package cloud-init --user-data FILE` on Debian 12 from its real
 * mirror. The system installs cloud-init, so vmstub seeds the user-data (NoCloud) rather than apply it:
 * the system's own cloud-init applies it at the first boot, and create waits for it. Its network and
 * SSH host keys stay vmstub's. A full create and cloud-init's first boot under TCG: about ten minutes.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { isRoot } from '../helpers/fixture.js';
import { useStub } from '../helpers/stub.js';

const MINUTES = 60_000;
const NAME = 'seeded1';

describe('vmstub create with cloud-init in the system (a seed)', { skip: !isRoot && 'needs root' }, () => {
  const box = new Sandbox();
  const ssh = (...command: string[]) => box.sshRoot(NAME, command);

  before(() => useStub(box));
  after(() => box.cleanup());

  it(
    'seeds the user-data; cloud-init applies it at the first boot, before create returns',
    { timeout: 45 * MINUTES },
    async () => {
      const userData = join(box.home, 'user-data.yaml');
      writeFileSync(
        userData,
        [
          '#cloud-config',
          'write_files:',
          '  - path: /etc/written-by-cloud-init',
          '    content: "seeded\\n"',
          'runcmd:',
          '  - echo ran > /var/tmp/cloud-init-runcmd',
          '',
        ].join('\n'),
      );
      const r = await box.runAsync(
        [
          'create',
          NAME,
          '--distro',
          'debian12',
          '--package',
          'cloud-init',
          '--user-data',
          userData,
          '--json',
        ],
        { timeoutMs: 45 * MINUTES },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /seeded for the system's own cloud-init/);
      assert.doesNotMatch(r.stderr, /warning: .*not applied/, 'nothing is translated for a seed');
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { firstBoot?: string };
      assert.equal(result.firstBoot, 'done', 'create waited for cloud-init');

      assert.equal(ssh('cat', '/var/lib/cloud/seed/nocloud/user-data'), readFileSync(userData, 'utf8'));
      assert.match(ssh('cloud-init', 'status'), /status: done/);
      assert.equal(ssh('cat', '/etc/written-by-cloud-init'), 'seeded\n');
      assert.equal(ssh('cat', '/var/tmp/cloud-init-runcmd'), 'ran\n');
      // cloud-init found the seed (no datasource probing) and named the instance from its meta-data.
      assert.equal(ssh('cloud-init', 'query', 'instance_id').trim(), `iid-vmstub-${NAME}`);
      assert.equal(ssh('hostname').trim(), NAME);
      // The network is vmstub's own networkd file; cloud-init wrote none.
      assert.match(ssh('ls', '/etc/systemd/network/'), /80-vmstub-ethernet\.network/);
      assert.doesNotMatch(ssh('ls', '/etc/systemd/network/'), /cloud-init/);
      assert.doesNotMatch(ssh('cat', '/etc/apt/sources.list'), /^deb /m, "apt's sources stay vmstub's");
      // The host key vmstub recorded is still the system's: create's login checked it with strict checking.
      const hostKey = ssh('cat', '/etc/ssh/ssh_host_ed25519_key.pub').split(' ')[1]!;
      const knownHosts = readFileSync(join(box.instanceDir(NAME), 'ssh', 'known_hosts'), 'utf8');
      assert.ok(knownHosts.includes(hostKey), knownHosts);
    },
  );
});
