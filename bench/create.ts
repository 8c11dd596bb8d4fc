/**
 * `vmstub create --distro debian12` to a verified SSH login (TCG, Debian's mirror), split by phase; in
 * the stub with mmdebstrap (the default) and with debootstrap; and, in the same run, plain mmdebstrap
 * and debootstrap of the same release and package set on the host, which is what a user would run
 * by hand (natively, so they are a floor, not a like-for-like race).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDistro } from '../src/catalog/index.js';
import type { DebDistro } from '../src/catalog/types.js';
import { debPackages } from '../src/installer/plan/index.js';
import { resolveSpec } from '../src/installer/spec.js';
import { Sandbox } from '../test/helpers/cli.js';
import { buildStub } from '../test/helpers/stub.js';
import type { BenchResult } from './report.js';

const CONFIGURE_STEPS = ['apt', 'system', 'network', 'accounts', 'ssh', 'verify'];

interface CreateResult {
  type: 'result';
  seconds: number;
  phases: Record<string, number>;
}

function runCreate(box: Sandbox, name: string, extra: string[]): Promise<CreateResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const child = spawn(
      process.execPath,
      [join('dist', 'vmstub.cjs'), 'create', name, '--distro', 'debian12', '--json', ...extra],
      {
        env: box.env,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => {
      // Events are one line each; the result that ends the output is pretty-printed.
      const at = out.lastIndexOf('\n{\n') + 1;
      if (code !== 0 || at === 0)
        return reject(new Error(`create ${name} failed (${code}): ${out.slice(-300)}`));
      const result = JSON.parse(out.slice(at)) as CreateResult;
      result.seconds = (Date.now() - t0) / 1000;
      resolve(result);
    });
  });
}

function timeHost(argv: string[]): number {
  const t0 = Date.now();
  execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26 });
  return Date.now() - t0;
}

export async function benchCreate(): Promise<BenchResult> {
  const box = new Sandbox();
  const work = mkdtempSync(join(tmpdir(), 'bench-create-'));
  const rows: BenchResult['rows'] = [];
  try {
    const stub = buildStub(box);
    mkdirSync(join(box.home, 'images'));
    symlinkSync(stub.image, join(box.home, 'images', 'stub-x86_64.squashfs'));

    for (const [label, extra] of [
      ['mmdebstrap', []],
      ['debootstrap', ['--bootstrap', 'debootstrap']],
    ] as const) {
      const name = `bench-${label}`;
      const r = await runCreate(box, name, [...extra]);
      box.run(['stop', '--force', name]);
      box.run(['rm', '--disks', name]);
      const p = r.phases;
      const configure = CONFIGURE_STEPS.reduce((sum, s) => sum + (p[s] ?? 0), 0);
      const prefix = `create, ${label} in the stub:`;
      rows.push({ label: `${prefix} total, to a verified SSH login`, values: [r.seconds * 1000] });
      rows.push({
        label: `${prefix} stub boot (QEMU start to the installer's first step)`,
        values: [(p['stub boot'] ?? 0) * 1000],
      });
      rows.push({ label: `${prefix} format and mount`, values: [((p.format ?? 0) + (p.mount ?? 0)) * 1000] });
      rows.push({
        label: `${prefix} bootstrap (download, unpack, configure; the kernel's postinst builds the initramfs in it)`,
        values: [((p.bootstrap ?? 0) + (p.updates ?? 0)) * 1000],
      });
      rows.push({
        label: `${prefix} configure (apt, system, network, accounts, ssh, verify)`,
        values: [configure * 1000],
      });
      rows.push({ label: `${prefix} handoff (install done to kexec)`, values: [(p.handoff ?? 0) * 1000] });
      rows.push({ label: `${prefix} boot to SSH login`, values: [(p['boot to SSH'] ?? 0) * 1000] });
    }

    const d = findDistro('debian12') as DebDistro;
    const spec = resolveSpec(
      { distro: 'debian12' },
      { hostname: 'bench', timezone: 'UTC', sshKeys: [], arch: 'x86_64' },
      'bench',
    );
    const packages = debPackages(d, spec).join(',');
    const mirror = d.mirror.x86_64!;
    const mm = join(work, 'mmdebstrap');
    rows.push({
      label: 'host: mmdebstrap --variant=minbase, same packages (native, no VM)',
      values: [
        timeHost([
          'mmdebstrap',
          '--mode=root',
          '--variant=minbase',
          `--include=${packages}`,
          d.suite,
          mm,
          mirror,
        ]),
      ],
    });
    rmSync(mm, { recursive: true, force: true });
    const db = join(work, 'debootstrap');
    rows.push({
      label: 'host: debootstrap --variant=minbase, same packages (native, no VM)',
      values: [timeHost(['debootstrap', '--variant=minbase', `--include=${packages}`, d.suite, db, mirror])],
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
    rmSync(box.home, { recursive: true, force: true });
  }
  return {
    name: 'vmstub create debian12',
    description:
      'Cold `vmstub create NAME --distro debian12` (the stub image already built; packages from deb.debian.org through slirp; TCG, 2 vCPUs, 2 GiB) to a verified SSH login, by phase, with either bootstrap tool in the stub; then the same release and package set bootstrapped on the host by hand.',
    rows,
    summary:
      "One run each (a create takes minutes); phases are timed on the host from the installer's events.",
  };
}
