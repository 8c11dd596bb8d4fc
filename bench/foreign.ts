/**
 * Each architecture's stub on this x86_64 host, side by side: building it (only when the cache does
 * not have it: under emulation that is ten to fifteen minutes), QEMU start to its autologin shell, and
 * QEMU start to a fixture installed system's init through the stub's handoff (kexec on x86_64 and
 * aarch64, the host's direct boot on riscv64, and on x86_64 the direct boot too, for comparison).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Arch } from '../src/util/arch.js';
import { Sandbox } from '../test/helpers/cli.js';
import {
  INSTALLED_MARKER,
  filesystemImage,
  installedTree,
  partsFromStub,
} from '../test/helpers/installed.js';
import { buildStub } from '../test/helpers/stub.js';
import type { BenchResult } from './report.js';

const ARCHES: Arch[] = ['x86_64', 'aarch64', 'riscv64'];

async function untilConsole(log: string, text: string, t0: number, timeoutMs = 600_000): Promise<number> {
  while (Date.now() - t0 < timeoutMs) {
    if (existsSync(log) && readFileSync(log, 'utf8').includes(text)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no '${text}' in ${log} within ${timeoutMs / 1000} s`);
}

export async function benchForeign(): Promise<BenchResult> {
  const box = new Sandbox();
  const work = mkdtempSync(join(tmpdir(), 'bench-foreign-'));
  const rows: BenchResult['rows'] = [];
  const notes: string[] = [];
  let n = 0;
  const boot = async (args: string[], until: string): Promise<number> => {
    const name = `b${n++}`;
    const t0 = Date.now();
    const r = box.run(['run', '--detach', '--name', name, '--memory', '1G', ...args]);
    if (r.code !== 0) throw new Error(r.stderr);
    try {
      return await untilConsole(join(box.instanceDir(name), 'console.log'), until, t0);
    } finally {
      box.run(['stop', '--force', name]);
    }
  };
  try {
    for (const arch of ARCHES) {
      const t0 = Date.now();
      const stub = buildStub(box, arch);
      const built = stub.stages.filter((s) => !s.hit).map((s) => s.name);
      const cached = stub.stages.filter((s) => s.hit).map((s) => s.name);
      if (built.length)
        rows.push({
          label: `${arch}: building the stub (vmstub image build stub --arch ${arch}; built: ${built.join(', ')}${cached.length ? `; cached: ${cached.join(', ')}` : ''})`,
          values: [Date.now() - t0],
        });
      else notes.push(`${arch}'s stub was cached`);
      rows.push({
        label: `${arch}: QEMU start to the stub's autologin shell`,
        values: [await boot([stub.image], '(automatic login)')],
      });
      const disk = join(work, `${arch}.img`);
      filesystemImage(
        'xfs',
        installedTree('xfs', arch === 'x86_64' ? undefined : partsFromStub(stub.image)),
        disk,
      );
      const how = arch === 'riscv64' ? 'the host boots it directly' : 'kexec';
      rows.push({
        label: `${arch}: QEMU start to the installed system's init through the handoff (${how})`,
        values: [await boot(['--data', disk, stub.image], INSTALLED_MARKER)],
      });
      if (arch === 'x86_64')
        rows.push({
          label: `${arch}: the same with --handoff host (the host boots it directly)`,
          values: [await boot(['--data', disk, '--handoff', 'host', stub.image], INSTALLED_MARKER)],
        });
    }
    return {
      name: 'stubs per architecture',
      description:
        'On this x86_64 host under TCG, 2 vCPUs, 1 GiB: each stub built through qemu-user-static (when not cached), booted, and handing over to a fixture installed system (its Debian kernel and a busybox initramfs on XFS).',
      rows,
      summary: notes.length ? `${notes.join('; ')}.` : 'Every stub was built in this run.',
    };
  } finally {
    box.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
