/**
 * vmstub's own start-up overhead: time from `vmstub run --detach` to the guest's first console line,
 * next to the very same QEMU command line (as vmstub recorded it) started by hand, in one run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Sandbox, VMSTUB } from '../test/helpers/cli.js';
import { fixtureSystemImage } from '../test/helpers/fixture.js';
import { median, type BenchResult } from './report.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

/**
 * Milliseconds from t0 until the console log holds a guest line (after vmstub's own start marker). It only
 * stats the file between changes, so the watching costs the guest (which competes for the same 2 cores)
 * about as little as the hand-run side's blocking read of QEMU's stdout.
 */
async function firstGuestLine(log: string, t0: bigint, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let lastSize = -1;
  while (Date.now() < deadline) {
    const size = existsSync(log) ? statSync(log).size : -1;
    if (size !== lastSize) {
      lastSize = size;
      const text = readFileSync(log, 'utf8');
      const start = text.lastIndexOf('--- vmstub:');
      const after = text.slice(text.indexOf('\n', start) + 1);
      if (start >= 0 && after.includes('\n')) return Number(process.hrtime.bigint() - t0) / 1e6;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`no console output in ${log}`);
}

async function vmstubRun(
  box: Sandbox,
  image: string,
  i: number,
): Promise<{ ms: number; argv: string[]; inputs: Map<string, Buffer> }> {
  const name = `bench${i}`;
  const t0 = process.hrtime.bigint();
  const child = spawn(
    process.execPath,
    [VMSTUB, 'run', '--detach', '--name', name, '--memory', '256M', image],
    {
      env: box.env,
      stdio: 'ignore',
    },
  );
  const ms = await firstGuestLine(join(box.instanceDir(name), 'console.log'), t0);
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
  const argv = JSON.parse(readFileSync(join(box.instanceDir(name), 'state.json'), 'utf8'))
    .qemuCommand as string[];
  const inputs = inputsUnder(argv, box.instanceDir(name));
  box.run(['stop', '--force', name]);
  box.run(['rm', name]);
  return { ms, argv, inputs };
}

/** The files QEMU's command line reads from the instance directory (fw_cfg items), by relative path. */
function inputsUnder(argv: string[], instanceDir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const a of argv)
    for (const m of a.matchAll(/file=([^,]+)/g))
      if (m[1]!.startsWith(`${instanceDir}/`) && existsSync(m[1]!))
        out.set(m[1]!.slice(instanceDir.length + 1), readFileSync(m[1]!));
  return out;
}

/**
 * The recorded command line with the instance's run files moved to a scratch directory, holding
 * copies of the files it reads (the instance itself is gone by then).
 */
async function handRun(argv: string[], instanceDir: string, inputs: Map<string, Buffer>): Promise<number> {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-qemu-'));
  for (const [rel, data] of inputs) {
    mkdirSync(dirname(join(scratch, rel)), { recursive: true });
    writeFileSync(join(scratch, rel), data);
  }
  const args = argv.slice(1).map((a) => a.split(instanceDir).join(scratch));
  const t0 = process.hrtime.bigint();
  const qemu = spawn(argv[0]!, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  const ms = await new Promise<number>((resolve, reject) => {
    let seen = '';
    qemu.stdout.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('\n')) resolve(Number(process.hrtime.bigint() - t0) / 1e6);
    });
    qemu.on('exit', () => reject(new Error('QEMU exited before printing')));
  });
  qemu.kill('SIGKILL');
  await new Promise((r) => qemu.on('exit', r));
  rmSync(scratch, { recursive: true, force: true });
  return ms;
}

export async function benchRunner(): Promise<BenchResult> {
  const fixture = fixtureSystemImage();
  const box = new Sandbox();
  try {
    // Warm the caches a user's second run would have (extracted kernel, KVM probe).
    const warm = await vmstubRun(box, fixture.image, 0);
    const instanceDir = box.instanceDir('bench0');
    const vmstub: number[] = [];
    const hand: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      vmstub.push((await vmstubRun(box, fixture.image, i)).ms);
      const argv = warm.argv.map((a) => a.split(instanceDir).join(box.instanceDir(`bench${i}`)));
      hand.push(await handRun(argv, box.instanceDir(`bench${i}`), warm.inputs));
    }
    const overhead = median(vmstub) - median(hand);
    return {
      name: 'runner start-up',
      description:
        "QEMU start to the fixture guest's first console line (Debian cloud kernel, busybox initramfs, TCG)",
      rows: [
        { label: 'vmstub run --detach', values: vmstub },
        { label: 'same QEMU command line by hand', values: hand },
      ],
      summary: `vmstub overhead (median difference): ${overhead.toFixed(0)} ms (target: under 150 ms)`,
    };
  } finally {
    box.cleanup();
    spawnSync('true');
  }
}
