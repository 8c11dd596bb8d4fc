/**
 * The second pass of an RPM install as far as it can go offline: centos9stream's plan, against a
 * fixture mirror with BaseOS and AppStream where every package the plan names exists (as a small
 * package built here and signed by a test key). The first pass is vmstub's bootstrap, as in the stub;
 * then the files the plan writes (the repository file, dnf's releasever, the key) go into the root as
 * its `prepare` step writes them, and the plan's own dnf command line runs, with the host's dnf given
 * the root (--installroot) where the stub runs the target's dnf inside it (chroot). What differs from
 * the real second pass: the host's dnf 4.14 and rpm 4.18 instead of the target's; --installroot for
 * the chroot; and so one option more, the repository file's gpgkey given its path inside the root
 * (the host's dnf reads a file:// key on the host).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rpmBootstrap } from '../../src/bootstrap/rpm/bootstrap.js';
import { RPM_DISTROS } from '../../src/catalog/rpm.js';
import { buildPlan } from '../../src/installer/plan/index.js';
import { firstPassPackages, systemPackages } from '../../src/installer/plan/rpm.js';
import { rpmRepos, targetKeyPath } from '../../src/installer/render-rpm.js';
import { resolveSpec } from '../../src/installer/spec.js';
import { serveDirectory } from '../helpers/deb-mirror.js';
import { isRoot } from '../helpers/fixture.js';
import {
  buildRpms,
  installedIn,
  makeRepo,
  makeSigningKey,
  signRpms,
  type FixtureRpm,
} from '../helpers/rpm-repo.js';

const CS9 = RPM_DISTROS.find((d) => d.id === 'centos9stream')!;
const LOCALE = 'en_US.UTF-8';
/** CentOS Stream 9's own /etc/dnf/dnf.conf, as its dnf package ships it. */
const CS9_DNF_CONF =
  '[main]\ngpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\nbest=True\nskip_if_unavailable=False\n';

describe(
  'the second pass of centos9stream (fixture mirror, the host’s dnf)',
  { skip: !isRoot && 'needs root (rpm --root)' },
  () => {
    const work = mkdtempSync(join(tmpdir(), 'vmstub-pass2-'));
    const servers: Server[] = [];
    after(() => {
      for (const s of servers) s.close();
      rmSync(work, { recursive: true, force: true });
    });

    let mirror = '';
    let mixedMirror = '';
    let keyFile = '';
    before(async () => {
      const key = makeSigningKey(work, 'cs9');
      keyFile = key.publicKey;
      const probe = resolveSpec(
        { distro: CS9.id, locale: LOCALE },
        { hostname: 'web1', timezone: 'UTC', sshKeys: [], arch: 'x86_64' },
      );
      const names = [...new Set([...firstPassPackages(CS9), ...systemPackages(CS9, probe)])];
      const packages = names.map((name): FixtureRpm => ({
        name,
        version: '1.0',
        ...(name === 'dnf'
          ? { requires: [CS9.releasePackage], files: { '/etc/dnf/dnf.conf': { content: CS9_DNF_CONF } } }
          : name === CS9.releasePackage
            ? { files: { '/etc/os-release': { content: 'ID="centos"\nVERSION_ID="9"\n' } } }
            : { files: { [`/usr/share/fixture/${name}`]: { content: `${name}\n` } } }),
      }));
      /** A CentOS Stream 9 mirror tree with these packages in BaseOS and an empty AppStream, served. */
      const serveMirror = async (name: string, rpms: string[]) => {
        const tree = join(work, name);
        makeRepo(join(tree, 'BaseOS', 'x86_64', 'os'), rpms);
        makeRepo(join(tree, 'AppStream', 'x86_64', 'os'), []);
        const served = await serveDirectory(tree, '9-stream');
        servers.push(served.server);
        return served.url;
      };
      const rpms = buildRpms(work, packages);
      signRpms(rpms, key);
      mirror = await serveMirror('mirror', rpms);

      // The same packages, the first pass's signed by the distribution's key and the rest by another.
      const mixed = buildRpms(join(work, 'mixed'), packages);
      const first = new Set(firstPassPackages(CS9));
      const isFirst = (f: string) => [...first].some((n) => basename(f).startsWith(`${n}-1.0-1.`));
      signRpms(mixed.filter(isFirst), key);
      signRpms(
        mixed.filter((f) => !isFirst(f)),
        makeSigningKey(work, 'other'),
      );
      mixedMirror = await serveMirror('mirror-mixed', mixed);
    });

    /**
     * Pass 1 as the plan's bootstrap action asks for it, the prepare step's files as it writes them,
     * then pass 2 as the plan's own dnf command line.
     */
    async function install(name: string, from: string) {
      const spec = resolveSpec(
        { distro: CS9.id, mirror: from, keyring: keyFile, locale: LOCALE },
        { hostname: 'web1', timezone: 'UTC', sshKeys: [], arch: 'x86_64' },
      );
      const plan = buildPlan(spec);
      const root = join(work, name);
      mkdirSync(root);
      const bootstrap = plan.steps
        .find((s) => s.id === 'bootstrap')!
        .actions.find((a) => a.kind === 'rpm-bootstrap')!;
      assert.ok(bootstrap.kind === 'rpm-bootstrap');
      await rpmBootstrap({
        repos: bootstrap.repos,
        arch: 'x86_64',
        packages: bootstrap.packages,
        root,
        dbpath: bootstrap.dbpath,
        keys: bootstrap.keys,
        cacheDir: join(work, 'cache'),
      });
      const names = () => installedIn(root).map((n) => n.replace(/-1\.0-1$/, ''));
      assert.deepEqual(names().sort(), firstPassPackages(CS9).sort());

      for (const a of plan.steps.find((s) => s.id === 'prepare')!.actions) {
        if (a.kind === 'write') {
          mkdirSync(dirname(join(root, a.path)), { recursive: true });
          writeFileSync(join(root, a.path), a.content);
        } else if (a.kind === 'copy-in' && a.from !== '/etc/resolv.conf') {
          mkdirSync(dirname(join(root, a.path)), { recursive: true });
          copyFileSync(a.from, join(root, a.path));
        }
      }
      assert.match(readFileSync(join(root, 'etc/yum.repos.d/vmstub.repo'), 'utf8'), /^gpgcheck=1$/m);
      assert.equal(rpmRepos(CS9, spec).length, 2);
      // What the prepare step's chroot'd `rpm --import` does, from outside.
      execFileSync('rpmkeys', [
        '--root',
        root,
        '--dbpath',
        CS9.rpmdb.path,
        '--import',
        join(root, targetKeyPath(0)),
      ]);

      // The host's dnf given the root instead of a chroot. Debian's rpm keeps its database in
      // ~/.rpmdb: a HOME whose .rpmmacros says the target's place.
      const chroot = plan.steps.find((s) => s.id === 'packages')!.actions[0]!;
      assert.ok(chroot.kind === 'exec' && chroot.chroot);
      const [dnf, ...args] = chroot.argv;
      assert.equal(dnf, 'dnf');
      const home = mkdtempSync(join(work, 'home-'));
      writeFileSync(join(home, '.rpmmacros'), `%_dbpath ${CS9.rpmdb.path}\n`);
      // Not execFileSync: the mirror is served from this process.
      const run = promisify(execFile)(
        'dnf',
        [
          `--installroot=${root}`,
          `--setopt=cachedir=${join(work, `dnf-cache-${name}`)}`,
          // The host's dnf reads a file:// gpgkey on the host, where the chroot reads it in the target.
          `--setopt=vmstub-*.gpgkey=file://${root}${targetKeyPath(0)}`,
          ...args,
        ],
        { env: { ...process.env, HOME: home, LC_ALL: 'C' } },
      );
      return { spec, names, run };
    }

    it('installs every package of the plan with the plan’s repository file and dnf command line', async () => {
      const { spec, names, run } = await install('root', mirror);
      await run;
      for (const name of systemPackages(CS9, spec)) assert.ok(names().includes(name), `${name} installed`);
    });

    it('refuses packages the distribution’s key did not sign, installing none of them', async () => {
      const { names, run } = await install('root-other-key', mixedMirror);
      await assert.rejects(run, (e: Error & { stderr?: string; stdout?: string }) => {
        assert.match(`${e.stdout}\n${e.stderr}`, /GPG check FAILED|public key .* is not installed/i);
        assert.doesNotMatch(`${e.stdout}\n${e.stderr}`, /Couldn't open file/);
        return true;
      });
      assert.deepEqual(names().sort(), firstPassPackages(CS9).sort(), 'nothing of pass 2 installed');
    });
  },
);
