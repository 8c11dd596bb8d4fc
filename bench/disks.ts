/**
 * Roots side by side in one run: `vmstub create --distro debian12` on XFS, ext4 and Btrfs, and on XFS
 * inside LUKS2 (--encrypt, the passphrase kept by the host), each to a verified SSH login, then stopped
 * and started to SSH again (what LUKS costs every start: two unlocks, in the handoff and in the
 * system's initramfs). Each variant is created twice: the first bootstraps its own root on the host
 * (the filesystem's module and the encryption packages are part of the recipe), the second starts
 * from that cached root, which is the create users repeat.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '../test/helpers/cli.js';
import { buildStub } from '../test/helpers/stub.js';
import { runCreate } from './create.js';
import type { BenchResult } from './report.js';

const VARIANTS: { label: string; args: string[] }[] = [
  { label: 'XFS', args: ['--filesystem', 'xfs'] },
  { label: 'ext4', args: ['--filesystem', 'ext4'] },
  { label: 'Btrfs', args: ['--filesystem', 'btrfs'] },
  { label: 'XFS in LUKS2', args: ['--filesystem', 'xfs', '--encrypt'] },
];

export async function benchDisks(): Promise<BenchResult> {
  const box = new Sandbox();
  const work = mkdtempSync(join(tmpdir(), 'bench-disks-'));
  const rows: BenchResult['rows'] = [];
  const keyFile = join(work, 'passphrase');
  writeFileSync(keyFile, 'a passphrase for the benchmark\n', { mode: 0o600 });
  const measured = (label: string, seconds: number) => {
    process.stderr.write(`bench: ${label}: ${seconds.toFixed(1)} s\n`);
    rows.push({ label, values: [seconds * 1000] });
  };
  try {
    const stub = buildStub(box);
    mkdirSync(join(box.home, 'images'));
    symlinkSync(stub.image, join(box.home, 'images', 'stub-x86_64.squashfs'));
    for (const [i, v] of VARIANTS.entries()) {
      const extra = [...v.args, ...(v.args.includes('--encrypt') ? ['--key-file', keyFile] : [])];
      for (const round of ['its root bootstrapped', 'from the cached root'] as const) {
        const name = `disk${i}${round === 'its root bootstrapped' ? 'a' : 'b'}`;
        const r = await runCreate(box, name, ['create', name, '--distro', 'debian12', ...extra]);
        measured(`create, ${v.label}, ${round}`, r.seconds);
        if (round === 'from the cached root') {
          if (box.run(['stop', name]).code !== 0) throw new Error(`stop ${name} failed`);
          const t0 = Date.now();
          const s = await box.runAsync(['start', name, '--wait-ssh=900'], { timeoutMs: 1_000_000 });
          if (s.code !== 0) throw new Error(`start ${name} failed: ${s.stderr}`);
          measured(`stop, then start to an SSH banner, ${v.label}`, (Date.now() - t0) / 1000);
        }
        box.run(['stop', '--force', name]);
      }
    }
    return {
      name: 'roots: filesystems and encryption',
      description:
        'vmstub create --distro debian12 to a verified SSH login on each root, bootstrapped on the host and again from the cached root, then a start of the stopped VM to an SSH banner. TCG, 2 vCPUs, 2 GiB, one VM at a time.',
      rows,
      summary: 'LUKS2: argon2id with 256 MiB and a one-second unlock, opened twice per boot.',
    };
  } finally {
    box.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
