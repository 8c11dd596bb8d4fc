/**
 * The slow tier: `vmstub create --distro centos9stream` against its fixture of real binaries
 * (el-fixture.ts) served with one fault at a time, each met where it arises and said in one line
 * naming the step, the instance left failed for `vmstub resume`; once the mirror is whole again,
 * resume installs and logs in. The faults: a package signed by a key the recipe does not trust (pass 1,
 * vmstub's bootstrap), a package whose bytes differ from the repository's checksum (pass 2, the
 * target's dnf, through the package cache, which keeps nothing a failed attempt fetched), and a
 * package the recipe installs missing from the repository (pass 2), and a disk too small for the system
 * (grown live, then resumed). vmstub's own downloads meeting
 * wrong bytes in the cache: test/integration/package-cache.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findDistro } from '../../src/catalog/index.js';
import type { RpmDistro } from '../../src/catalog/types.js';
import { lastVmstubLine, Sandbox } from '../helpers/cli.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { recipeFixture } from '../helpers/el-create.js';
import type { ElFixture } from '../helpers/el-fixture.js';
import { isRoot } from '../helpers/fixture.js';
import { makeSigningKey, signRpms } from '../helpers/rpm-repo.js';
import { useStub } from '../helpers/stub.js';

if (!isRoot) throw new Error('the create tests need root (the tests share root-owned caches)');
const MINUTES = 60_000;
const distro = findDistro('centos9stream') as RpmDistro;
const name = 'elfaults';
const SMALL_DISK = '540M';

describe('vmstub create --distro centos9stream from a faulty mirror, then vmstub resume', () => {
  const box = new Sandbox();
  let fixture: ElFixture;
  let server: Server | undefined;
  let url = '';
  /** The mirror this test serves: the fixture's files linked, a fault swapped in at a time. */
  const mirror = join(box.home, 'mirror');
  const baseOs = join(mirror, 'BaseOS/x86_64/os');
  const appStream = join(mirror, 'AppStream/x86_64/os');
  const whole = () => {
    rmSync(mirror, { recursive: true, force: true });
    execFileSync('cp', ['-al', fixture.mirror, mirror]);
  };
  /** The served copy of a package (a new file: the fixture's own stays as it was). */
  const ownCopy = (repo: string, pkg: string) => {
    const file = readdirSync(join(repo, 'Packages')).find(
      (f) => f.startsWith(`${pkg}-`) && /^\d/.test(f.slice(pkg.length + 1)),
    );
    assert.ok(file, `${pkg} is in ${repo}`);
    const path = join(repo, 'Packages', file);
    const bytes = join(box.home, file);
    copyFileSync(path, bytes);
    rmSync(path);
    copyFileSync(bytes, path);
    return path;
  };
  const reindex = (repo: string) => execFileSync('createrepo_c', ['--quiet', '--no-database', repo]);

  before(async () => {
    useStub(box);
    fixture = recipeFixture(distro);
    whole();
    ({ server, url } = await serveDirectory(mirror, distro.releasever));
  });
  after(() => {
    server?.close();
    box.cleanup();
  });

  const phase = () =>
    (JSON.parse(box.run(['show', '--json', name]).stdout) as { install?: { phase: string } }).install?.phase;

  it('refuses a package signed by an untrusted key, in one line at the bootstrap', async () => {
    const other = makeSigningKey(box.home, 'untrusted');
    signRpms([ownCopy(baseOs, 'dnf')], other);
    reindex(baseOs);
    const r = await box.runAsync(
      [
        'create',
        name,
        '--distro',
        distro.id,
        '--mirror',
        url,
        '--keyring',
        fixture.key.publicKey,
        '--locale',
        'C.UTF-8',
        // Room for pass 1, not for the system: the disk fills once the mirror is whole (below).
        '--disk',
        SMALL_DISK,
      ],
      { timeoutMs: 30 * MINUTES },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      lastVmstubLine(r.stderr),
      /^vmstub: install failed at step bootstrap: signature check failed: dnf\b.*; to start over: vmstub resume elfaults$/,
    );
    assert.equal(phase(), 'failed');
  });

  it("stops at the target's dnf when a package's bytes differ from the repository checksum", async () => {
    // Pass 1's packages are in the package cache since the first attempt, which served them rightly:
    // the fault is in one pass 2 fetches, through the cache, which must not keep it.
    whole();
    appendFileSync(ownCopy(baseOs, 'less'), 'tampered');
    const r = await box.runAsync(['resume', name], { timeoutMs: 30 * MINUTES });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      lastVmstubLine(r.stderr),
      /^vmstub: install failed at step packages: .*vmstub resume elfaults$/,
    );
    assert.match(r.stderr, /package cache: not keeping the \d+ files this failed attempt fetched/);
    assert.match(
      readFileSync(join(box.instanceDir(name), 'install.log'), 'utf8'),
      /less-[^\n]*(checksum|expected size)/i,
    );
    assert.equal(phase(), 'failed');
  });

  it("stops at the target's dnf when a package of the recipe is missing, in one line", async () => {
    whole();
    rmSync(ownCopy(appStream, 'vim-minimal'));
    reindex(appStream);
    const r = await box.runAsync(['resume', name], { timeoutMs: 30 * MINUTES });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      lastVmstubLine(r.stderr),
      /^vmstub: install failed at step packages: .*vim-minimal.*vmstub resume elfaults$/,
    );
    assert.equal(phase(), 'failed');
  });

  it('a disk too small for the system: one line saying it filled, and how to go on', async () => {
    whole();
    const r = await box.runAsync(['resume', name], { timeoutMs: 30 * MINUTES });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      lastVmstubLine(r.stderr),
      /^vmstub: install failed at step \S+: .*; the new root's filesystem is full \(\d+(\.\d)? MiB of \d+(\.\d)? MiB used\); .*; to start over on a larger disk: vmstub disk grow elfaults \+4G, then vmstub resume elfaults$/,
    );
    assert.equal(phase(), 'failed');
    // The way on the line names: the disk grown live while the stub waits.
    const grow = box.run(['disk', 'grow', name, '+4G'], { timeoutMs: 120_000 });
    assert.equal(grow.code, 0, grow.stderr);
    assert.match(
      grow.stdout,
      /disk grown from 540 MiB to 4\.5 GiB \(raw, live\); not a system vmstub installed/,
    );
  });

  it('installs and logs in by resume once the mirror is whole and the disk large enough', async () => {
    const r = await box.runAsync(['resume', name], { timeoutMs: 40 * MINUTES });
    assert.equal(r.code, 0, `${r.stderr}\n${box.consoleLog(name).split('\n').slice(-30).join('\n')}`);
    assert.equal(box.sshRoot(name, ['rpm', '-q', 'vim-minimal']).trim().startsWith('vim-minimal-'), true);
    const rootBytes = Number(box.sshRoot(name, ['findmnt', '-bno', 'SIZE', '/']).trim());
    assert.ok(rootBytes > 4 * 1024 ** 3, `the root was made on the grown disk: ${rootBytes} bytes`);
    assert.equal(phase(), 'installed');
  });
});
