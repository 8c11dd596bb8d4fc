/**
 * SSH host keys made on the host (natively, with the host's ssh-keygen) and put into a new system by
 * the installer's host-keys action: pairs that belong together, different every time, replacing the
 * package's own keys, with the modes sshd demands, and reported back as the system's keys.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { executePlan } from '../../src/installer/execute.js';
import { buildPlan, type Plan } from '../../src/installer/plan/index.js';
import { resolveSpec } from '../../src/installer/spec.js';
import { makeHostKeys } from '../../src/vm/ssh.js';

const work = mkdtempSync(join(tmpdir(), 'vmstub-host-keys-'));
after(() => rmSync(work, { recursive: true, force: true }));

const spec = resolveSpec(
  { distro: 'debian12' },
  { hostname: 'web1', timezone: 'UTC', sshKeys: [], arch: 'x86_64' },
);
/** Only the two actions under test, from the real plan's ssh and verify steps. */
const keysPlan = (): Plan => {
  const plan = buildPlan(spec);
  const only = (id: string, kind: string) => ({
    ...plan.steps.find((s) => s.id === id)!,
    actions: plan.steps.find((s) => s.id === id)!.actions.filter((a) => a.kind === kind),
  });
  return { ...plan, steps: [only('ssh', 'host-keys'), only('verify', 'collect-host-keys')] };
};

describe('SSH host keys made on the host', () => {
  it('are three pairs that belong together, named for the system, different every time', async () => {
    const a = await makeHostKeys('web1');
    const b = await makeHostKeys('web1');
    assert.deepEqual(Object.keys(a).sort(), [
      'ssh_host_ecdsa_key',
      'ssh_host_ecdsa_key.pub',
      'ssh_host_ed25519_key',
      'ssh_host_ed25519_key.pub',
      'ssh_host_rsa_key',
      'ssh_host_rsa_key.pub',
    ]);
    for (const name of Object.keys(a).filter((n) => !n.endsWith('.pub'))) {
      const file = join(work, name);
      writeFileSync(file, a[name]!, { mode: 0o600 });
      const fields = (key: string) => key.trim().split(' ').slice(0, 2).join(' ');
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file]).toString();
      assert.equal(fields(derived), fields(a[`${name}.pub`]!), `${name}: a pair`);
      assert.match(a[`${name}.pub`]!, / root@web1\n$/);
      assert.notEqual(a[name], b[name], `${name} is new each time`);
      rmSync(file);
    }
  });

  it("replace the package's own keys in the target, owner-only, and are the keys reported", async () => {
    const target = join(work, 'target');
    mkdirSync(join(target, 'etc/ssh'), { recursive: true });
    writeFileSync(join(target, 'etc/ssh/ssh_host_dsa_key'), 'made by a postinst\n');
    writeFileSync(join(target, 'etc/ssh/ssh_host_dsa_key.pub'), 'ssh-dss AAAA old\n');
    writeFileSync(join(target, 'etc/ssh/sshd_config'), '# kept\n');
    const keys = await makeHostKeys('web1');
    const reported: string[] = [];
    await executePlan(keysPlan(), {
      target,
      staging: join(work, 'staging'),
      hooks: join(work, 'hooks'),
      logFile: join(work, 'install.log'),
      hostKeys: keys,
      emit: (e) => {
        if (e.type === 'install-done') reported.push(...e.hostKeys);
      },
    });
    const dir = join(target, 'etc/ssh');
    assert.deepEqual(readdirSync(dir).sort(), [...Object.keys(keys), 'sshd_config'].sort());
    for (const name of Object.keys(keys))
      assert.equal(statSync(join(dir, name)).mode & 0o777, name.endsWith('.pub') ? 0o644 : 0o600, name);
    const pubs = Object.keys(keys)
      .filter((n) => n.endsWith('.pub'))
      .sort()
      .map((n) => keys[n]!.trim().split(' ').slice(0, 2).join(' '));
    assert.deepEqual(reported, pubs);
  });

  it('that are not host key files are refused before anything is written', async () => {
    const target = join(work, 'target2');
    mkdirSync(join(target, 'etc/ssh'), { recursive: true });
    await assert.rejects(
      executePlan(keysPlan(), {
        target,
        staging: join(work, 'staging'),
        hooks: join(work, 'hooks'),
        logFile: join(work, 'install2.log'),
        hostKeys: { '../../root/.ssh/authorized_keys': 'ssh-ed25519 AAAA evil' },
        emit: () => {},
      }),
      /not host key files: \.\.\/\.\.\/root\/\.ssh\/authorized_keys/,
    );
    assert.deepEqual(readdirSync(join(target, 'etc/ssh')), []);
  });
});
