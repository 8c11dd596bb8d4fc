import { copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CATALOG } from '../catalog/index.js';
import type { Distro } from '../catalog/types.js';
import { onCleanup } from '../util/cleanup.js';
import type { Arch } from '../util/arch.js';
import {
  buildStages,
  currentSnapshot,
  deliver,
  explainStages,
  planStages,
  type StageReport,
} from './build.js';
import { readImageConfig, type ImageConfig } from './config.js';
import { installationPaths, treeDigest } from './installation.js';
import { fileSha256 } from '../util/digest.js';
import { appendToSquashfs, checkSystemImage } from './squashfs.js';
import { StageCache, stageKey } from './stage-cache.js';

export interface StubMirrors {
  mirror?: string;
  securityMirror?: string;
}

/** The stub's recipe, an image config shipped with vmstub (guest/stub/stub.yaml). */
export function stubConfig(arch: Arch, m: StubMirrors = {}, guest = installationPaths().guest): ImageConfig {
  return readImageConfig(join(guest, 'stub.yaml'), arch, {
    arch,
    mirror: m.mirror,
    securityMirror: m.securityMirror,
  });
}

/** /root/ID.sh: the manual path (`./debian12.sh` at the stub's console), one per catalog entry. */
export function installScript(d: Distro): string {
  const lines = [
    '#!/bin/sh',
    `# Installs ${d.name} onto this VM's data disk (or its share). Generated from vmstub's catalog.`,
  ];
  // A mount namespace of its own: the target's mounts must not leak into services' namespaces.
  if (d.installable) lines.push(`exec unshare --mount --propagation private vmstub install ${d.id} "$@"`);
  else {
    lines.push(
      `echo "${d.name} is in vmstub's catalog but not installable by this version of vmstub yet." >&2`,
      'exit 1',
    );
  }
  return lines.join('\n') + '\n';
}

export function stubBanner(catalog: Distro[]): string {
  const installable = catalog.filter((d) => d.installable).map((d) => `./${d.id}.sh`);
  return [
    '',
    'This is the vmstub stub: a disposable Debian 13 system that installs a distribution onto this',
    "VM's data disk (/dev/disk/by-id/virtio-data) and, on later boots, hands over to it with kexec.",
    'Nothing here is kept: it runs from a read-only image with its changes in memory.',
    '',
    `To install by hand: ${installable.join(' ')}`,
    '(vmstub create on the host does the same unattended.)',
    '',
  ].join('\n');
}

/**
 * vmstub's own part of the stub, appended to the squashed root filesystem as /vmstub (the root
 * filesystem links /root, /etc/motd and /usr/local/bin/vmstub into it): the bundle, one install script
 * per catalog entry, the banner. Written under dir/vmstub.
 */
export function writeStubOverlay(dir: string, bundle: string, catalog: Distro[]): void {
  const top = join(dir, 'vmstub');
  mkdirSync(join(top, 'root'), { recursive: true, mode: 0o755 });
  copyFileSync(bundle, join(top, 'vmstub.cjs'));
  writeFileSync(join(top, 'motd'), stubBanner(catalog));
  for (const d of catalog) writeFileSync(join(top, 'root', `${d.id}.sh`), installScript(d), { mode: 0o755 });
}

export interface StubBuildOptions {
  arch: Arch;
  outDir: string;
  mirrors: StubMirrors;
  progress: (line: string) => void;
  noCache?: boolean;
  /** Prune the cache to this many bytes afterwards. */
  cacheMaxBytes?: number;
}

export interface StubBuildResult {
  image: string;
  sha256: string;
  bytes: number;
  stages: { name: string; hit: boolean; key: string }[];
  log: string;
}

/** vmstub's own part, written to a temporary directory for the length of `use`. */
async function withOverlay<T>(bundle: string, use: (dir: string) => Promise<T>): Promise<T> {
  const overlay = mkdtempSync(join(tmpdir(), 'vmstub-overlay-'));
  const cleanup = onCleanup(`temporary directory ${overlay}`, () =>
    rmSync(overlay, { recursive: true, force: true }),
  );
  try {
    writeStubOverlay(overlay, bundle, CATALOG);
    return await use(overlay);
  } finally {
    await cleanup.undo();
  }
}

/** The stub's own stage: the root stage's squashfs with vmstub appended. */
function imageStage(arch: Arch, rootKey: string, overlay: string) {
  const inputs = { from: rootKey, vmstub: treeDigest(overlay) };
  return { cacheName: `stub-image-${arch}`, inputs, key: stageKey(inputs) };
}

export type StubStageReport = StageReport | (Omit<StageReport, 'name'> & { name: 'image' });

/** `image build stub --explain`: the config's stages, then the stub's own. */
export async function explainStub(
  arch: Arch,
  mirrors: StubMirrors,
  cache: StageCache,
  progress: (line: string) => void,
): Promise<StubStageReport[]> {
  const config = stubConfig(arch, mirrors);
  const snapshot = await currentSnapshot(config, cache, progress);
  const reports = explainStages(planStages(config, snapshot, process.env.SOURCE_DATE_EPOCH ?? null), cache);
  const rootKey = reports.find((r) => r.name === 'root')!.key;
  const image = await withOverlay(installationPaths().bundle, async (overlay) => {
    const stage = imageStage(arch, rootKey, overlay);
    const e = cache.explain(stage.cacheName, stage.key, stage.inputs);
    const changed = e.changed.map((c) => (c.startsWith('from: ') ? 'the root stage changed' : c));
    return { name: 'image' as const, hit: e.hit, key: stage.key, changed };
  });
  return [...reports.filter((r) => !r.skipped), image];
}

/**
 * Builds stub-ARCH.squashfs: the stages of its image config (bootstrap, packages, root: squashed with
 * the stub's packages, guest files and hook), then the image stage, which appends vmstub's own part
 * (bundle, install scripts, banner) to that squashfs, so that a change to vmstub alone squashes nothing
 * again.
 */
export async function buildStub(
  o: StubBuildOptions,
  cache = new StageCache(undefined, o.progress),
): Promise<StubBuildResult> {
  const { bundle } = installationPaths();
  const config = stubConfig(o.arch, o.mirrors);
  const built = await buildStages(
    config,
    { outDir: o.outDir, progress: o.progress, noCache: o.noCache },
    cache,
  );
  const stages: StubBuildResult['stages'] = built.stages
    .filter((s) => !s.skipped)
    .map((s) => ({ name: s.name, hit: s.hit, key: s.key }));
  const system = join(built.dirs.root!, `${config.name}.squashfs`);
  const rootKey = stages.find((s) => s.name === 'root')!.key;

  let imageDir: string;
  await withOverlay(bundle, async (overlay) => {
    const stage = imageStage(o.arch, rootKey, overlay);
    const started = Date.now();
    const image = await cache.build(
      stage.cacheName,
      stage.key,
      async (dir) => {
        o.progress(`image: miss (${stage.key}); appending vmstub to the system`);
        const out = join(dir, `stub-${o.arch}.squashfs`);
        copyFileSync(system, out);
        await appendToSquashfs(overlay, out);
        await checkSystemImage(out, o.arch);
      },
      2,
      { inputs: stage.inputs, rebuild: o.noCache },
    );
    o.progress(
      `image: ${image.hit ? 'hit' : `done in ${((Date.now() - started) / 1000).toFixed(1)} s`} (${stage.key})`,
    );
    stages.push({ name: 'image', hit: image.hit, key: stage.key });
    imageDir = image.dir;
  });

  mkdirSync(o.outDir, { recursive: true });
  const target = join(o.outDir, `stub-${o.arch}.squashfs`);
  deliver(join(imageDir!, `stub-${o.arch}.squashfs`), target);
  if (o.cacheMaxBytes !== undefined) {
    const removed = await cache.pruneToSize(o.cacheMaxBytes, [...Object.values(built.dirs), imageDir!]);
    for (const r of removed) o.progress(`cache: removed ${r.split('/').pop()} (over the cache size)`);
  }
  return {
    image: target,
    sha256: await fileSha256(target),
    bytes: statSync(target).size,
    stages,
    log: built.log,
  };
}
