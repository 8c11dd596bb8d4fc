/**
 * The RPM bootstrap's metadata and resolver on CentOS Stream 9's real AppStream (17,649 packages, with
 * the BaseOS stand-in of test/helpers/cs9.ts): each process loads the metadata once and solves the
 * first pass of centos9stream and 20 AppStream names, next to the host's dnf (libsolv) doing the same
 * from the same files. Wall time and peak memory of the whole process, and vmstub's own split.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RPM_DISTROS } from '../src/catalog/rpm.js';
import { firstPassPackages } from '../src/installer/plan/rpm.js';
import { cs9Repos } from '../test/helpers/cs9.js';
import { median, type BenchResult } from './report.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);

/** Wall milliseconds and peak resident KiB of a command, as its parent sees them (getrusage). */
function measured(argv: string[], input = ''): { ms: number; maxRssKiB: number; stdout: string } {
  const out = execFileSync(
    '/usr/bin/python3',
    [
      '-c',
      'import json,resource,subprocess,sys,time\n' +
        't=time.monotonic(); p=subprocess.run(sys.argv[1:], input=sys.stdin.buffer.read(), capture_output=True, check=True)\n' +
        'ms=(time.monotonic()-t)*1000; rss=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n' +
        'print(json.dumps({"ms": ms, "maxRssKiB": rss, "stdout": p.stdout.decode()}))',
      ...argv,
    ],
    { input, maxBuffer: 1 << 28 },
  ).toString();
  return JSON.parse(out) as { ms: number; maxRssKiB: number; stdout: string };
}

export async function benchRpmSolve(): Promise<BenchResult> {
  const work = mkdtempSync(join(tmpdir(), 'bench-rpm-solve-'));
  try {
    const repos = cs9Repos(work);
    const primary = (dir: string) => {
      const rd = join(dir, 'repodata');
      return join(
        rd,
        readdirSync(rd).find((f) => f.endsWith('-primary.xml.gz'))!,
      );
    };
    const names = [...new Set(repos.appstream.map((p) => p.name))].sort();
    const requests = [
      firstPassPackages(RPM_DISTROS.find((d) => d.id === 'centos9stream')!),
      ...Array.from({ length: 20 }, (_, i) => [names[Math.floor((i * names.length) / 20)]!]),
    ];
    const ours: {
      ms: number;
      maxRssKiB: number;
      loadMs: number;
      indexMs: number;
      solveMs: number;
      failed: number;
    }[] = [];
    const dnf: { ms: number; maxRssKiB: number }[] = [];
    for (let i = 0; i < RUNS; i++) {
      const o = measured([
        process.execPath,
        join(import.meta.dirname, 'rpm-solve-worker.js'),
        JSON.stringify(requests),
        primary(repos.appstreamDir),
        primary(repos.baseosDir),
      ]);
      ours.push({
        ...o,
        ...(JSON.parse(o.stdout) as { loadMs: number; indexMs: number; solveMs: number; failed: number }),
      });
      const root = mkdtempSync(join(work, 'dnf-'));
      dnf.push(
        measured(
          [
            '/usr/bin/python3',
            join('test', 'helpers', 'dnf-solve.py'),
            root,
            repos.appstreamDir,
            repos.baseosDir,
          ],
          JSON.stringify(requests),
        ),
      );
      rmSync(root, { recursive: true, force: true });
    }
    const mib = (kib: number[]) => `${(median(kib) / 1024).toFixed(0)} MiB`;
    return {
      name: 'rpm-solve',
      description: `CentOS Stream 9's real AppStream (${repos.appstream.length} x86_64 and noarch packages) and the BaseOS stand-in (${repos.baseos.length}): load the metadata and solve ${requests.length} requests (centos9stream's first pass, 20 AppStream names), one process each, ${RUNS} runs.`,
      rows: [
        { label: 'vmstub: whole process', values: ours.map((o) => o.ms) },
        { label: 'vmstub: read primary.xml.gz', values: ours.map((o) => o.loadMs) },
        { label: 'vmstub: index', values: ours.map((o) => o.indexMs) },
        { label: `vmstub: ${requests.length} solves`, values: ours.map((o) => o.solveMs) },
        { label: 'dnf (libsolv), same requests: whole process', values: dnf.map((d) => d.ms) },
      ],
      summary: `Peak memory (median): vmstub ${mib(ours.map((o) => o.maxRssKiB))}, dnf ${mib(dnf.map((d) => d.maxRssKiB))}. Requests vmstub could not solve: ${ours[0]?.failed ?? 0} of ${requests.length}.`,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
