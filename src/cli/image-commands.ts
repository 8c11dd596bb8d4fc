import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { annotate, jsonOption } from './options.js';
import { note, printJson } from './output.js';
import { buildImage, currentSnapshot, describeStage, explainStages, planStages } from '../image/build.js';
import { readImageConfig, type ImageConfig } from '../image/config.js';
import { imagesDir, stubImagePath } from '../image/locations.js';
import { StageCache } from '../image/stage-cache.js';
import { buildStub, explainStub, type StubStageReport } from '../image/stub.js';
import { ARCHES, parseArch } from '../util/arch.js';
import { usageError } from '../util/errors.js';
import { formatSize, parseSize } from '../util/size.js';
import { hostArch } from '../vm/accel.js';

const DEFAULT_CACHE_MAX = '20G';

/** `--explain`: each stage against the cache, building nothing. */
async function explain(image: ImageConfig, json: boolean | undefined): Promise<void> {
  const cache = new StageCache(undefined, note);
  const snapshot = await currentSnapshot(image, cache, note);
  const reports = explainStages(planStages(image, snapshot, process.env.SOURCE_DATE_EPOCH ?? null), cache);
  printReports(image.name, reports, json);
}

function printReports(name: string, reports: StubStageReport[], json: boolean | undefined): void {
  if (json) printJson({ name, stages: reports });
  else for (const r of reports) process.stdout.write(describeStage(r) + '\n');
}

const build = () =>
  new Command('build')
    .summary("build an image from a config file (FILE.yaml), or vmstub's stub")
    .description(
      "Builds the image a config file describes (docs/images.md): a root filesystem from the distribution's mirror, the config's packages, its hook, its accounts, then NAME.squashfs (with NAME.vmlinuz and NAME.initrd beside it; vmstub run boots it) and, with formats: [iso], a hybrid BIOS and UEFI live ISO. Each stage is cached under a key made from its inputs; a change rebuilds from the first stage it touches. 'stub' builds vmstub's own stub image from the config shipped with vmstub (guest/stub/stub.yaml), with vmstub itself appended. SOURCE_DATE_EPOCH is honoured.",
    )
    .argument('<CONFIG>', "an image config (FILE.yaml), or 'stub'")
    .addOption(
      annotate(new Option('--arch <ARCH>', 'the architecture of the image').choices(ARCHES), {
        defaultText: "the config's, else this machine's",
      }),
    )
    .addOption(annotate(new Option('--out <DIR>', 'where the outputs go'), { defaultText: imagesDir() }))
    .addOption(
      annotate(new Option('--mirror <URL>', 'the mirror the build uses'), {
        defaultText: "the config's, else the distribution's (deb.debian.org for the stub)",
      }),
    )
    .addOption(
      annotate(new Option('--security-mirror <URL>', 'the security mirror the build uses'), {
        defaultText: "the config's, else --mirror when given, else the distribution's",
      }),
    )
    .addOption(
      new Option(
        '--explain',
        'say for each stage whether the cache has it, and on a miss what changed; build nothing',
      ),
    )
    .addOption(new Option('--no-cache', 'rebuild every stage (the results are cached again)'))
    .addOption(
      new Option(
        '--cache-max <SIZE>',
        'prune the image cache to this size afterwards, least recently used first',
      ).default(DEFAULT_CACHE_MAX),
    )
    .addOption(
      jsonOption('the result as JSON: {name, outputs: [{format, path, bytes, sha256}], stages, ...}'),
    )
    .action(async (config, o) => {
      const outDir = resolve(o.out ?? imagesDir());
      const arch = o.arch ? parseArch(o.arch) : undefined;
      const cacheMaxBytes = parseSize(o.cacheMax, '--cache-max');
      if (config === 'stub') {
        const mirrors = { mirror: o.mirror, securityMirror: o.securityMirror };
        if (o.explain) {
          const reports = await explainStub(
            arch ?? hostArch() ?? 'x86_64',
            mirrors,
            new StageCache(undefined, note),
            note,
          );
          return printReports('stub', reports, o.json);
        }
        const result = await buildStub({
          arch: arch ?? hostArch() ?? 'x86_64',
          outDir,
          mirrors,
          progress: note,
          noCache: o.cache === false,
          cacheMaxBytes,
        });
        if (o.json) printJson(result);
        else process.stdout.write(`${result.image}: ${formatSize(result.bytes)}, sha256 ${result.sha256}\n`);
        return;
      }
      if (!existsSync(config))
        throw usageError(`image build: no config file ${config} (an image config FILE.yaml, or 'stub')`);
      const image = readImageConfig(config, hostArch() ?? 'x86_64', {
        arch,
        mirror: o.mirror,
        securityMirror: o.securityMirror,
      });
      if (o.explain) return explain(image, o.json);
      if (image.distro.family !== 'deb' && !existsSync(stubImagePath(image.arch))) {
        // The RPM family's bootstrap runs with the stub's rpm and keys.
        note(`no stub image yet: building ${stubImagePath(image.arch)} (once; a few minutes)`);
        await buildStub({
          arch: image.arch,
          outDir: imagesDir(),
          mirrors: {},
          progress: (l) => note(`stub: ${l}`),
        });
      }
      const cache = new StageCache(undefined, note);
      const result = await buildImage(
        image,
        { outDir, progress: note, noCache: o.cache === false, cacheMaxBytes },
        cache,
      );
      if (o.json) printJson(result);
      else
        for (const out of result.outputs)
          process.stdout.write(
            `${out.format}: ${out.path}: ${formatSize(out.bytes)}, sha256 ${out.sha256}\n`,
          );
    });

export const imageCommands = () => [new Command('image').summary('build system images').addCommand(build())];
