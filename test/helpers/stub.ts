import { join } from 'node:path';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { mountsUnder, Sandbox } from './cli.js';
import { testCacheDir } from './fixture.js';
import type { Arch } from '../../src/util/arch.js';

export interface StubBuild {
  image: string;
  sha256: string;
  bytes: number;
  stages: { name: string; hit: boolean; key: string }[];
}

/** Builds (or finds cached) the real stub image, as `vmstub image build stub` does for a user. */
export function buildStub(box: Sandbox, arch: Arch = 'x86_64'): StubBuild {
  const out = join(testCacheDir(), 'stub');
  const r = box.run(['image', 'build', 'stub', '--arch', arch, '--out', out, '--json'], {
    timeoutMs: 60 * 60 * 1000,
  });
  if (r.code !== 0) throw new Error(`vmstub image build stub failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StubBuild;
}

/**
 * Readies a sandbox for creates: its user has no SSH keys of their own (create makes a key for each
 * instance, and vmstub ssh uses it), and its images/ holds the real stub, built or found cached.
 */
export function useStub(box: Sandbox, arch: Arch = 'x86_64'): void {
  box.env.HOME = join(box.home, 'home');
  delete box.env.SSH_AUTH_SOCK;
  mkdirSync(box.env.HOME, { recursive: true });
  const stub = buildStub(box, arch);
  mkdirSync(join(box.home, 'images'), { recursive: true });
  symlinkSync(stub.image, join(box.home, 'images', `stub-${arch}.squashfs`));
}

/**
 * A sandbox with a package cache of its own, for building a stub from nothing (the interruption tests):
 * the command that builds it, where its stages and its image go, and the cleanup that undoes any
 * mount a killed build left.
 */
export function stubBuildSandbox(): {
  box: Sandbox;
  cache: string;
  out: string;
  build: string[];
  cleanup: () => void;
} {
  const box = new Sandbox();
  const cache = join(box.home, 'cache');
  const out = join(box.home, 'images');
  box.env.VMSTUB_CACHE = cache;
  return {
    box,
    cache,
    out,
    build: ['image', 'build', 'stub', '--out', out],
    cleanup: () => {
      for (const m of mountsUnder(cache)) execFileSync('umount', ['-l', m]);
      rmSync(box.home, { recursive: true, force: true });
    },
  };
}
