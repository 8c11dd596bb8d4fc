/**
 * The stub image: size, a cold build (empty cache), a rebuild after a change to vmstub's TypeScript only,
 * a rebuild with nothing changed, and QEMU start to the stub's autologin prompt under TCG.
 */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Sandbox, VMSTUB } from '../test/helpers/cli.js';
import { median, type BenchResult } from './report.js';

const BOOTS = Number(process.env.BENCH_BOOTS ?? 3);

function timedBuild(
  env: NodeJS.ProcessEnv,
  bundle: string,
  out: string,
): { ms: number; stages: { name: string; hit: boolean }[]; bytes: number; image: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bundle, 'image', 'build', 'stub', '--out', out, '--json'], {
    env,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`stub build failed: ${r.stderr}`);
  const result = JSON.parse(r.stdout) as {
    stages: { name: string; hit: boolean }[];
    bytes: number;
    image: string;
  };
  return { ms, ...result };
}

async function bootToAutologin(box: Sandbox, image: string, i: number): Promise<number> {
  const name = `stubboot${i}`;
  const t0 = process.hrtime.bigint();
  const r = box.run(['run', '--detach', '--name', name, image]);
  if (r.code !== 0) throw new Error(r.stderr);
  const log = join(box.instanceDir(name), 'console.log');
  for (;;) {
    if (existsSync(log) && readFileSync(log, 'utf8').includes('(automatic login)')) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  box.run(['stop', '--force', name]);
  box.run(['rm', name]);
  return ms;
}

export async function benchStub(): Promise<BenchResult> {
  const box = new Sandbox();
  const cache = mkdtempSync(join(tmpdir(), 'bench-stub-cache-'));
  const out = mkdtempSync(join(tmpdir(), 'bench-stub-out-'));
  // A second copy of vmstub whose bundle differs by a comment: "a change to the TypeScript only".
  const changed = mkdtempSync(join(tmpdir(), 'bench-stub-changed-'));
  mkdirSync(join(changed, 'dist'));
  copyFileSync(VMSTUB, join(changed, 'dist', 'vmstub.cjs'));
  appendFileSync(join(changed, 'dist', 'vmstub.cjs'), `\n// changed for the benchmark ${Date.now()}\n`);
  symlinkSync(resolve(VMSTUB, '..', '..', 'guest'), join(changed, 'guest'));
  const env = { ...box.env, VMSTUB_CACHE: cache };
  try {
    const cold = timedBuild(env, VMSTUB, out);
    const tsOnly = timedBuild(env, join(changed, 'dist', 'vmstub.cjs'), out);
    const cached = timedBuild(env, VMSTUB, out);
    const boots: number[] = [];
    for (let i = 0; i < BOOTS; i++) boots.push(await bootToAutologin(box, cold.image, i));
    const describe = (b: { stages: { name: string; hit: boolean }[] }) =>
      b.stages.map((s) => `${s.name} ${s.hit ? 'hit' : 'miss'}`).join(', ');
    return {
      name: 'stub image',
      description: `stub-x86_64.squashfs: ${(cold.bytes / 1024 / 1024).toFixed(1)} MiB (${(cold.bytes / 1e6).toFixed(1)} MB). Builds from Debian's mirror; boots under TCG, 2 vCPUs, 2 GiB.`,
      rows: [
        { label: `cold build (${describe(cold)})`, values: [cold.ms] },
        { label: `rebuild after a TypeScript change (${describe(tsOnly)})`, values: [tsOnly.ms] },
        { label: `rebuild, nothing changed (${describe(cached)})`, values: [cached.ms] },
        { label: 'QEMU start to the autologin prompt', values: boots },
      ],
      summary: `Targets: at most 150 MB (${cold.bytes <= 150e6 ? 'met' : 'missed'}); autologin within 20 s (median ${(median(boots) / 1000).toFixed(1)} s: ${median(boots) <= 20_000 ? 'met' : 'missed'}).`,
    };
  } finally {
    box.cleanup();
    for (const d of [cache, out, changed]) rmSync(d, { recursive: true, force: true });
  }
}
