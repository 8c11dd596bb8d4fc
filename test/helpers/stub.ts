import { join } from 'node:path';
import type { Sandbox } from './cli.js';
import { testCacheDir } from './fixture.js';

export interface StubBuild {
  image: string;
  sha256: string;
  bytes: number;
  stages: { name: string; hit: boolean; key: string }[];
}

/** Builds (or finds cached) the real stub image, as `vmstub image build stub` does for a user. */
export function buildStub(box: Sandbox): StubBuild {
  const out = join(testCacheDir(), 'stub');
  const r = box.run(['image', 'build', 'stub', '--out', out, '--json'], { timeoutMs: 30 * 60 * 1000 });
  if (r.code !== 0) throw new Error(`vmstub image build stub failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StubBuild;
}
