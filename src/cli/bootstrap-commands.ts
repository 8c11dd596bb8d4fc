import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { annotate, jsonOption, repeatable } from './options.js';
import { printJson } from './output.js';
import { loadRepos, rpmBootstrap, solve, type RpmBootstrapOptions } from '../bootstrap/rpm/bootstrap.js';
import { nevra } from '../bootstrap/rpm/metadata.js';
import { installStage3 } from '../bootstrap/gentoo/stage3.js';
import { findDistro } from '../catalog/index.js';
import type { GentooDistro } from '../catalog/types.js';
import { ARCHES, RPM_ARCHES, type Arch } from '../util/arch.js';
import { prefixed, usageError } from '../util/errors.js';
import { cacheDir } from '../util/paths.js';
import { hostArch } from '../vm/accel.js';

const GENTOO = findDistro('gentoo') as GentooDistro;
const GENTOO_ARCHES = ARCHES.filter((a) => GENTOO.stage3[a]);

const rpmBootstrapCommand = () =>
  new Command('rpm-bootstrap')
    .summary('install RPM packages and their dependencies from rpm-md repositories into an empty root')
    .description(
      "Metadata and packages are checked against the repository's checksums (repomd.xml -> primary -> package), primary in gzip, xz, zstd or bzip2; versioned and rich dependencies are honoured. rpm installs everything in one transaction with signatures required. Downloads are cached in the vmstub cache (rpm-bootstrap/). This is the first pass of RPM-family installs.",
    )
    .argument('<PACKAGE...>', 'the packages (or capabilities) to install')
    .addOption(repeatable('--repo <URL>', 'a repository base URL (http, https, file)'))
    .option('--root <DIR>', 'the root directory to install into')
    .addOption(
      annotate(new Option('--arch <ARCH>', "packages' architecture").choices(RPM_ARCHES), {
        defaultText: "this machine's",
      }),
    )
    .addOption(new Option('--dbpath <PATH>', 'rpm database inside the root').default('/var/lib/rpm'))
    .addOption(repeatable('--key <FILE>', 'a signing key; every package must verify against one'))
    .addOption(
      repeatable(
        '--key-from-first <PATH>',
        'key file inside the first PACKAGE, when no independent copy exists (weaker)',
      ),
    )
    .option(
      '--sha1-key-bindings',
      "accept SHA-1 in the keys' self-signatures (CentOS 6 and 7 keys), never in package signatures",
    )
    .addOption(repeatable('--exclude <CAP>', 'a requirement to leave out'))
    .option('--solve-only', 'print what would be installed, and why, and stop')
    .addOption(
      jsonOption('as JSON: with --solve-only [{nevra, repo, reason}], else {installed: [nevra], root}'),
    )
    .action(async (packages, a) => {
      const repos = (a.repo ?? []).map((baseurl, i) => ({ id: `repo${i + 1}`, baseurl }));
      if (!repos.length) throw usageError('rpm-bootstrap: give at least one --repo URL');
      for (const r of repos)
        if (!/^(https?|file):\/\//.test(r.baseurl))
          throw usageError(`rpm-bootstrap: --repo ${r.baseurl} is not an http, https or file URL`);
      const arch = a.arch ?? hostArch() ?? process.arch;
      const keys = (a.key ?? []).map((k) => resolve(k));
      for (const k of keys) if (!existsSync(k)) throw usageError(`rpm-bootstrap: no key file ${k}`);
      const solveOnly = a.solveOnly === true;
      const rootArg = a.root;
      if (!solveOnly) {
        if (!rootArg) throw usageError('rpm-bootstrap: give --root DIR');
        if (!existsSync(rootArg) || !statSync(rootArg).isDirectory())
          throw usageError(`rpm-bootstrap: ${rootArg} is not a directory`);
        if (!keys.length && !a.keyFromFirst?.length)
          throw usageError('rpm-bootstrap: give --key FILE (packages are never installed unverified)');
      }
      const o: RpmBootstrapOptions = {
        repos,
        arch,
        packages,
        root: rootArg ? resolve(rootArg) : '/nonexistent',
        dbpath: a.dbpath,
        keys,
        keysFromFirstPackage: a.keyFromFirst ?? [],
        sha1KeyBindings: a.sha1KeyBindings === true,
        cacheDir: join(cacheDir(), 'rpm-bootstrap'),
        exclude: a.exclude ?? [],
        log: solveOnly ? undefined : (l) => process.stderr.write(`${l}\n`),
      };
      try {
        if (solveOnly) {
          const res = await solve(await loadRepos(o), o);
          const rows = res.packages.map((p) => ({
            nevra: nevra(p),
            repo: p.repo,
            reason: res.reasons.get(nevra(p)),
          }));
          if (a.json) printJson(rows);
          else for (const r of rows) process.stdout.write(`${r.nevra}\t${r.reason}\n`);
          return;
        }
        const result = await rpmBootstrap(o);
        if (a.json) printJson({ installed: result.resolution.packages.map(nevra), root: o.root });
        else process.stdout.write(`installed ${result.resolution.packages.length} packages into ${o.root}\n`);
      } catch (e) {
        throw prefixed('rpm-bootstrap', e);
      }
    });

const gentooStage3Command = () =>
  new Command('gentoo-stage3')
    .summary("unpack Gentoo's newest stage3 into an empty directory, its signature and checksum verified")
    .description(
      'latest-FLAVOUR.txt names the stage3; its .DIGESTS must carry a valid signature by the release key (fetched, and refused unless its fingerprint is the pinned one), and the tarball must match the SHA512 in the signed text before tar unpacks it with xattrs and numeric owners. This is the first step of `vmstub install gentoo`.',
    )
    .option('--root <DIR>', 'the directory to unpack into')
    .addOption(
      annotate(new Option('--arch <ARCH>', 'the stage3 architecture').choices(GENTOO_ARCHES), {
        defaultText: "this machine's",
      }),
    )
    .addOption(new Option('--mirror <URL>', 'a Gentoo distfiles mirror').default(GENTOO.mirror))
    .addOption(
      new Option('--key-url <URL>', 'where the release key is fetched').default(GENTOO.releaseKey.url),
    )
    .addOption(
      new Option('--fingerprint <FPR>', 'the fingerprint the release key must have').default(
        GENTOO.releaseKey.fingerprint,
      ),
    )
    .addOption(jsonOption('the result as JSON: {stage3, root}'))
    .action(async (a) => {
      const arch = (a.arch ?? hostArch()) as Arch;
      const stage3 = GENTOO.stage3[arch];
      if (!stage3) throw usageError(`gentoo-stage3: no stage3 for ${arch} (x86_64, aarch64)`);
      const root = a.root;
      if (!root || !existsSync(root) || !statSync(root).isDirectory())
        throw usageError('gentoo-stage3: give --root DIR, an existing directory');
      try {
        await installStage3({
          mirror: a.mirror,
          dir: stage3.dir,
          flavour: stage3.flavour,
          releaseKey: { url: a.keyUrl, fingerprint: a.fingerprint },
          root: resolve(root),
          cacheDir: join(cacheDir(), 'gentoo'),
          log: (l) => process.stderr.write(`${l}\n`),
        });
      } catch (e) {
        throw prefixed('gentoo-stage3', e);
      }
      if (a.json) printJson({ stage3: stage3.flavour, root: resolve(root) });
      else process.stdout.write(`unpacked ${stage3.flavour} into ${resolve(root)}\n`);
    });

export const bootstrapCommands = () => [rpmBootstrapCommand(), gentooStage3Command()];
