/**
 * The boot handoff: QEMU start to the installed kernel's first console line through the stub, split into
 * the stub's boot, Node.js starting, and the handoff's own work; next to the same installed kernel and
 * initramfs booted directly (what the stub adds to).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '../test/helpers/cli.js';
import { fixtureKernel } from '../test/helpers/fixture.js';
import { INSTALLED_MARKER, filesystemImage, installedTree } from '../test/helpers/installed.js';
import { buildStub } from '../test/helpers/stub.js';
import { median, type BenchResult } from './report.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** Host-side milliseconds from t0 until each pattern first appears in the console log. */
async function watch(log: string, t0: bigint, patterns: RegExp[], timeoutMs = 180_000): Promise<number[]> {
  const seen: (number | undefined)[] = patterns.map(() => undefined);
  const deadline = Date.now() + timeoutMs;
  while (seen.some((s) => s === undefined)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${patterns.filter((_, i) => seen[i] === undefined).join(', ')}`);
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    const start = text.lastIndexOf('--- vmstub:');
    const now = Number(process.hrtime.bigint() - t0) / 1e6;
    patterns.forEach((p, i) => {
      if (seen[i] === undefined && start >= 0 && p.test(text.slice(start))) seen[i] = now;
    });
    await new Promise((r) => setTimeout(r, 25));
  }
  return seen as number[];
}

const INSTALLED_FIRST_LINE = /\] Linux version 6\.1\./;

export async function benchHandoff(): Promise<BenchResult> {
  const box = new Sandbox();
  const work = mkdtempSync(join(tmpdir(), 'bench-handoff-'));
  try {
    const stub = buildStub(box);
    const tree = installedTree('xfs');
    const disk = join(work, 'installed.img');
    filesystemImage('xfs', tree, disk);
    const version = fixtureKernel().version;
    const through: number[] = [];
    const stubPart: number[] = [];
    const nodePart: number[] = [];
    const handoffPart: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const name = `handoff${i}`;
      const t0 = process.hrtime.bigint();
      const r = box.run([
        'run',
        '--detach',
        '--name',
        name,
        '--memory',
        '1G',
        '--data',
        disk,
        '--append',
        'vmstub.debug',
        stub.image,
      ]);
      if (r.code !== 0) throw new Error(r.stderr);
      const log = join(box.instanceDir(name), 'console.log');
      const [linux] = await watch(log, t0, [INSTALLED_FIRST_LINE, new RegExp(INSTALLED_MARKER)]);
      through.push(linux!);
      // In-guest timestamps (seconds since the stub kernel started) from vmstub.debug.
      const text = readFileSync(log, 'utf8');
      const handoffStart = Number(/vmstub-init: ([\d.]+)s handoff starting/.exec(text)?.[1]) * 1000;
      const jsStart = Number(/vmstub-handoff: started at ([\d.]+)s/.exec(text)?.[1]) * 1000;
      const handoffWork = Number(/handing over after (\d+) ms/.exec(text)?.[1]);
      stubPart.push(handoffStart);
      nodePart.push(jsStart - handoffStart);
      handoffPart.push(handoffWork);
      box.run(['stop', '--force', name]);
      box.run(['rm', name]);

      const d = `direct${i}`;
      const t1 = process.hrtime.bigint();
      const rd = box.run([
        'run',
        '--detach',
        '--name',
        d,
        '--memory',
        '1G',
        '--kernel',
        join(tree, 'boot', `vmlinuz-${version}`),
        '--initrd',
        join(tree, 'boot', `initrd.img-${version}`),
      ]);
      if (rd.code !== 0) throw new Error(rd.stderr);
      const [first] = await watch(join(box.instanceDir(d), 'console.log'), t1, [
        /\] Linux version /,
        new RegExp(INSTALLED_MARKER),
      ]);
      direct.push(first!);
      box.run(['stop', '--force', d]);
      box.run(['rm', d]);
    }
    const added = median(through) - median(direct);
    return {
      name: 'boot handoff',
      description:
        "QEMU start to the installed kernel's first console line, the installed system (Debian's cloud kernel, busybox initramfs) on an XFS data disk; TCG, 2 vCPUs. The stub's parts are in-guest times from vmstub.debug.",
      rows: [
        { label: 'through the stub (vmstub run --data disk stub.squashfs)', values: through },
        { label: '  stub kernel and initramfs, to the handoff starting', values: stubPart },
        { label: '  Node.js starting the handoff', values: nodePart },
        { label: '  the handoff: probe, mount, find, kexec -l', values: handoffPart },
        { label: 'the same kernel and initramfs booted directly (--kernel/--initrd)', values: direct },
      ],
      summary: `The stub adds ${(added / 1000).toFixed(1)} s before the installed kernel starts (target: at most 8 s).`,
    };
  } finally {
    box.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
