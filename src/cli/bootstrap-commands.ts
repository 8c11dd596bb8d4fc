import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { flag, list, str } from './args.js';
import { printJson } from './output.js';
import type { Command } from './vm-commands.js';
import { loadRepos, rpmBootstrap, solve, type RpmBootstrapOptions } from '../bootstrap/rpm/bootstrap.js';
import { nevra } from '../bootstrap/rpm/metadata.js';
import { installStage3 } from '../bootstrap/gentoo/stage3.js';
import { findDistro } from '../catalog/index.js';
import type { GentooDistro } from '../catalog/types.js';
import type { Arch } from '../vm/definition.js';
import { ExitCode, VmstubError, usageError } from '../util/errors.js';
import { cacheDir } from '../util/paths.js';
import { hostArch } from '../vm/accel.js';

const ARCHES = new Set(['x86_64', 'aarch64', 'riscv64', 'ppc64le', 's390x']);

const rpmBootstrapCommand: Command = {
  spec: {
    name: 'rpm-bootstrap',
    summary: 'install RPM packages and their dependencies from rpm-md repositories into an empty root.',
    usage: '[options] PACKAGE...',
    positionals: [{ name: 'PACKAGE', variadic: true }],
    options: [
      {
        name: 'repo',
        takes: 'value',
        repeat: true,
        valueName: 'URL',
        help: 'a repository base URL (http, https, file); repeatable',
      },
      { name: 'root', takes: 'value', valueName: 'DIR', help: 'the root directory to install into' },
      {
        name: 'arch',
        takes: 'value',
        valueName: 'ARCH',
        help: "packages' architecture (default: this machine's)",
      },
      {
        name: 'dbpath',
        takes: 'value',
        valueName: 'PATH',
        help: 'rpm database inside the root (default /var/lib/rpm)',
      },
      {
        name: 'key',
        takes: 'value',
        repeat: true,
        valueName: 'FILE',
        help: 'a signing key; every package must verify against one',
      },
      {
        name: 'key-from-first',
        takes: 'value',
        repeat: true,
        valueName: 'PATH',
        help: 'key file inside the first PACKAGE, when no independent copy exists (weaker)',
      },
      { name: 'exclude', takes: 'value', repeat: true, valueName: 'CAP', help: 'a requirement to leave out' },
      { name: 'solve-only', takes: 'flag', help: 'print what would be installed, and why, and stop' },
      { name: 'json', takes: 'flag', help: 'with --solve-only: machine-readable' },
    ],
    details:
      "Metadata and packages are checked against the repository's checksums (repomd.xml -> primary ->\n" +
      'package), primary in gzip, xz, zstd or bzip2; versioned and rich dependencies are honoured. rpm\n' +
      'installs everything in one transaction with signatures required. Downloads are cached in the vmstub\n' +
      'cache (rpm-bootstrap/). This is the first pass of RPM-family installs.',
  },
  async run(a) {
    const repos = list(a, 'repo').map((baseurl, i) => ({ id: `repo${i + 1}`, baseurl }));
    if (!repos.length) throw usageError('rpm-bootstrap: give at least one --repo URL');
    for (const r of repos)
      if (!/^(https?|file):\/\//.test(r.baseurl))
        throw usageError(`rpm-bootstrap: --repo ${r.baseurl} is not an http, https or file URL`);
    const arch = str(a, 'arch') ?? hostArch() ?? process.arch;
    if (!ARCHES.has(arch)) throw usageError(`rpm-bootstrap: unknown architecture ${arch}`);
    const keys = list(a, 'key').map((k) => resolve(k));
    for (const k of keys) if (!existsSync(k)) throw usageError(`rpm-bootstrap: no key file ${k}`);
    const solveOnly = flag(a, 'solve-only');
    const rootArg = str(a, 'root');
    if (!solveOnly) {
      if (!rootArg) throw usageError('rpm-bootstrap: give --root DIR');
      if (!existsSync(rootArg) || !statSync(rootArg).isDirectory())
        throw usageError(`rpm-bootstrap: ${rootArg} is not a directory`);
      if (!keys.length && !list(a, 'key-from-first').length)
        throw usageError('rpm-bootstrap: give --key FILE (packages are never installed unverified)');
    }
    const o: RpmBootstrapOptions = {
      repos,
      arch,
      packages: a.positionals,
      root: rootArg ? resolve(rootArg) : '/nonexistent',
      dbpath: str(a, 'dbpath') ?? '/var/lib/rpm',
      keys,
      keysFromFirstPackage: list(a, 'key-from-first'),
      cacheDir: join(cacheDir(), 'rpm-bootstrap'),
      exclude: list(a, 'exclude'),
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
        if (flag(a, 'json')) printJson(rows);
        else for (const r of rows) process.stdout.write(`${r.nevra}\t${r.reason}\n`);
        return ExitCode.ok;
      }
      const result = await rpmBootstrap(o);
      process.stdout.write(`installed ${result.resolution.packages.length} packages into ${o.root}\n`);
      return ExitCode.ok;
    } catch (e) {
      if (e instanceof VmstubError) throw e;
      throw new VmstubError(`rpm-bootstrap: ${(e as Error).message}`);
    }
  },
};

const gentooStage3Command: Command = {
  spec: {
    name: 'gentoo-stage3',
    summary: "unpack Gentoo's newest stage3 into an empty directory, its signature and checksum verified.",
    usage: '[options]',
    positionals: [],
    options: [
      { name: 'root', takes: 'value', valueName: 'DIR', help: 'the directory to unpack into' },
      {
        name: 'arch',
        takes: 'value',
        valueName: 'ARCH',
        help: "x86_64 or aarch64 (default: this machine's)",
      },
      {
        name: 'mirror',
        takes: 'value',
        valueName: 'URL',
        help: 'a Gentoo distfiles mirror (default: distfiles.gentoo.org)',
      },
      { name: 'key-url', takes: 'value', valueName: 'URL', help: 'where the release key is fetched' },
      {
        name: 'fingerprint',
        takes: 'value',
        valueName: 'FPR',
        help: 'the fingerprint the release key must have',
      },
    ],
    details:
      'latest-FLAVOUR.txt names the stage3; its .DIGESTS must carry a valid signature by the release key\n' +
      '(fetched, and refused unless its fingerprint is the pinned one), and the tarball must match the\n' +
      'SHA512 in the signed text before tar unpacks it with xattrs and numeric owners. This is the first\n' +
      'step of `vmstub install gentoo`.',
  },
  async run(a) {
    const d = findDistro('gentoo') as GentooDistro;
    const arch = (str(a, 'arch') ?? hostArch()) as Arch;
    const stage3 = d.stage3[arch];
    if (!stage3) throw usageError(`gentoo-stage3: no stage3 for ${arch} (x86_64, aarch64)`);
    const root = str(a, 'root');
    if (!root || !existsSync(root) || !statSync(root).isDirectory())
      throw usageError('gentoo-stage3: give --root DIR, an existing directory');
    try {
      await installStage3({
        mirror: str(a, 'mirror') ?? d.mirror,
        dir: stage3.dir,
        flavour: stage3.flavour,
        keyUrl: str(a, 'key-url') ?? d.releaseKey.url,
        fingerprint: str(a, 'fingerprint') ?? d.releaseKey.fingerprint,
        root: resolve(root),
        cacheDir: join(cacheDir(), 'gentoo'),
        log: (l) => process.stderr.write(`${l}\n`),
      });
    } catch (e) {
      throw new VmstubError(`gentoo-stage3: ${(e as Error).message}`);
    }
    process.stdout.write(`unpacked ${stage3.flavour} into ${resolve(root)}\n`);
    return ExitCode.ok;
  },
};

export const bootstrapCommands: Command[] = [rpmBootstrapCommand, gentooStage3Command];
