/**
 * `vmstub create --distro debian12` to a verified SSH login (TCG, Debian's mirror), split by phase: the
 * bootstrap in the stub, with an empty package cache and again with a full one; bootstrapped on the host
 * (cold, --fresh); again from the cached root (warm, a new name); again with the mirror gone (offline);
 * and a clone of the warm one. In the same run, what a user would run instead:
 * mmdebstrap and debootstrap of the same release and package set on the host by hand, and mkosi's
 * build of the same release (natively, so they are a floor, not a like-for-like race).
 * BENCH_DEBOOTSTRAP=1 adds a create with debootstrap in the stub (about twenty minutes);
 * BENCH_NO_STUB_INSTALLS=1 leaves out the two creates that bootstrap in the stub (about 24 minutes).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDistro } from '../src/catalog/index.js';
import { faultyMirror } from '../test/helpers/fault-proxy.js';
import type { DebDistro } from '../src/catalog/types.js';
import { debPackages } from '../src/installer/plan/index.js';
import { resolveSpec } from '../src/installer/spec.js';
import { Sandbox } from '../test/helpers/cli.js';
import { buildStub } from '../test/helpers/stub.js';
import type { BenchResult } from './report.js';

const CONFIGURE_STEPS = ['apt', 'system', 'network', 'accounts', 'ssh', 'verify'];

export interface CreateResult {
  type: 'result';
  seconds: number;
  phases: Record<string, number>;
}

/** Runs create (or clone) with --json, returning its result with the wall time it took. */
export function runCreate(box: Sandbox, name: string, argv: string[]): Promise<CreateResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [join('dist', 'vmstub.cjs'), ...argv, '--json'], {
      env: box.env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => {
      // NDJSON: the result is the last line.
      const last = out.trimEnd().split('\n').pop() ?? '';
      let result: CreateResult | undefined;
      try {
        result = JSON.parse(last) as CreateResult;
      } catch {
        result = undefined;
      }
      if (code !== 0 || result?.type !== 'result')
        return reject(new Error(`${argv[0]} ${name} failed (${code}): ${out.slice(-300)}`));
      result.seconds = (Date.now() - t0) / 1000;
      resolve(result);
    });
  });
}

function timeHost(argv: string[], cwd?: string): number {
  const t0 = Date.now();
  execFileSync(argv[0]!, argv.slice(1), { cwd, stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  return Date.now() - t0;
}

export async function benchCreate(): Promise<BenchResult> {
  const box = new Sandbox();
  const work = mkdtempSync(join(tmpdir(), 'bench-create-'));
  const rows: BenchResult['rows'] = [];
  const mirror = await faultyMirror('http://deb.debian.org/', []);
  try {
    const stub = buildStub(box);
    mkdirSync(join(box.home, 'images'));
    symlinkSync(stub.image, join(box.home, 'images', 'stub-x86_64.squashfs'));
    // Cold, warm and offline go through a loopback mirror passing deb.debian.org on, so that the
    // offline run can have it taken away; their cached root is keyed on its address.
    const viaMirror = [
      '--mirror',
      `${mirror.url}/debian`,
      '--security-mirror',
      `${mirror.url}/debian-security`,
    ];
    // The package cache starts empty, so the first create in the stub fetches everything.
    rmSync(join(box.env.VMSTUB_CACHE!, 'packages'), { recursive: true, force: true });
    const inStub = process.env.BENCH_NO_STUB_INSTALLS
      ? []
      : [
          { label: 'bootstrap in the stub', extra: ['--bootstrap-on', 'guest'] },
          {
            label: 'bootstrap in the stub, packages from the package cache',
            extra: ['--bootstrap-on', 'guest'],
          },
        ];
    const cases: { label: string; extra: string[]; before?: () => Promise<void>; keep?: boolean }[] = [
      ...inStub,
      ...(process.env.BENCH_DEBOOTSTRAP
        ? [
            {
              label: 'debootstrap in the stub',
              extra: ['--bootstrap-on', 'guest', '--bootstrap', 'debootstrap'],
            },
          ]
        : []),
      {
        label: 'cold: bootstrapped on the host (--fresh)',
        extra: ['--bootstrap-on', 'host', '--fresh', ...viaMirror],
      },
      { label: 'warm: the cached root, a new name', extra: [...viaMirror], keep: true },
      {
        label: 'offline: the cached root, the mirror gone',
        extra: [...viaMirror],
        before: () => mirror.close(),
      },
    ];
    const record = (label: string, r: CreateResult) => {
      const p = r.phases;
      const configure = CONFIGURE_STEPS.reduce((sum, s) => sum + (p[s] ?? 0), 0);
      const prefix = `${label}:`;
      const row = (what: string, seconds: number) =>
        rows.push({ label: `${prefix} ${what}`, values: [seconds * 1000] });
      row('total, to a verified SSH login', r.seconds);
      if (p['host bootstrap'] !== undefined)
        row('bootstrap on the host (mmdebstrap, natively)', p['host bootstrap']);
      if (p['root from cache'] !== undefined) row('cached root found and checked', p['root from cache']);
      row("stub boot (QEMU start to the installer's first step)", p['stub boot'] ?? 0);
      if (p.identity !== undefined) {
        row(
          'new identity (mount, host name, machine-id, host keys, verify)',
          (p.mount ?? 0) + p.identity + (p.verify ?? 0),
        );
      } else {
        row('format and mount', (p.format ?? 0) + (p.mount ?? 0));
        if (p.unpack !== undefined) row('unpack the root from the host', p.unpack);
        else
          row('bootstrap in the stub (download, unpack, configure)', (p.bootstrap ?? 0) + (p.updates ?? 0));
        row('configure (apt, system, network, accounts, ssh, verify)', configure);
      }
      row('handoff (install done to kexec)', p.handoff ?? 0);
      row('boot to SSH login', p['boot to SSH'] ?? 0);
    };
    let kept: string | undefined;
    for (const [i, c] of cases.entries()) {
      await c.before?.();
      const name = `bench${i}`;
      record(
        `create, ${c.label}`,
        await runCreate(box, name, ['create', name, '--distro', 'debian12', ...c.extra]),
      );
      box.run(['stop', name], { timeoutMs: 300_000 });
      if (c.keep) kept = name;
      else box.run(['rm', '--disks', name]);
    }
    if (kept) {
      record(
        'clone of a stopped instance',
        await runCreate(box, 'benchclone', ['clone', kept, 'benchclone']),
      );
      box.run(['stop', '--force', 'benchclone']);
      box.run(['rm', '--disks', 'benchclone']);
      box.run(['rm', '--disks', kept]);
    }

    const d = findDistro('debian12') as DebDistro;
    const spec = resolveSpec(
      { distro: 'debian12' },
      { hostname: 'bench', timezone: 'UTC', sshKeys: [], arch: 'x86_64' },
      'bench',
    );
    const packages = debPackages(d, spec);
    const mirrorUrl = d.mirror.x86_64!;
    const mm = join(work, 'mmdebstrap');
    rows.push({
      label: 'host: mmdebstrap --variant=minbase, same packages (native, no VM)',
      values: [
        timeHost([
          'mmdebstrap',
          '--mode=root',
          '--variant=minbase',
          `--include=${packages.join(',')}`,
          d.suite,
          mm,
          mirrorUrl,
        ]),
      ],
    });
    rmSync(mm, { recursive: true, force: true });
    const db = join(work, 'debootstrap');
    rows.push({
      label: 'host: debootstrap --variant=minbase, same packages (native, no VM)',
      values: [
        timeHost([
          'debootstrap',
          '--variant=minbase',
          `--include=${packages.join(',')}`,
          d.suite,
          db,
          mirrorUrl,
        ]),
      ],
    });
    rmSync(db, { recursive: true, force: true });
    // mkosi 14 (Debian's): its directory output, the same release and packages; its bootable disk
    // (gpt_ext4) fails in its loop device setup on these machines, so it is not booted here.
    const mk = join(work, 'mkosi');
    mkdirSync(mk);
    rows.push({
      label: 'host: mkosi 14 --format directory, same release and packages (native, no VM, not booted)',
      values: [
        timeHost(
          [
            'mkosi',
            '--distribution=debian',
            '--release=bookworm',
            '--format=directory',
            '--with-docs',
            `--package=${packages.filter((p) => p !== 'apt').join(',')}`,
            `--output=${join(mk, 'image')}`,
            'build',
          ],
          mk,
        ),
      ],
    });
  } finally {
    // A case that failed leaves its VM running: none outlives the benchmark.
    const left = JSON.parse(box.run(['list', '--json']).stdout || '[]') as { name: string }[];
    for (const vm of left) box.run(['stop', '--force', vm.name]);
    await mirror.close();
    rmSync(work, { recursive: true, force: true });
    rmSync(box.home, { recursive: true, force: true });
  }
  return {
    name: 'vmstub create debian12',
    description:
      '`vmstub create NAME --distro debian12` (the stub image already built; packages from deb.debian.org; TCG, 2 vCPUs, 2 GiB) to a verified SSH login, by phase: bootstrapped in the stub (an empty package cache, then a full one), on the host (cold), from the cached root (warm), with the mirror gone (offline), and a clone of the warm one; then what a user would run by hand on the host.',
    rows,
    summary:
      "One run each (a create takes minutes); phases are timed on the host from the installer's events.",
  };
}
