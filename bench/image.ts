/**
 * The image builder against what a user would otherwise run, in the same run and from the same mirror:
 * a minimal Debian 12 live ISO built cold (empty caches), built again with nothing changed, and built
 * after a change to the hook (vmstub) or to the chroot hooks (live-build); its size; QEMU start to the
 * login prompt on the serial console in each kind of drive (by plain QEMU: a SATA CD drive on q35 and an
 * IDE one on the PC with SeaBIOS, a USB stick with OVMF; and vmstub run --iso's virtio-scsi CD). mkosi (Debian 12's, version 14) makes no ISO: it builds the nearest kind of image,
 * a plain squashfs of the same release, cold and again.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from '../test/helpers/cli.js';
import { bootToLogin, type Drive, type Firmware } from '../test/helpers/plain-boot.js';
import type { BenchResult } from './report.js';

const BOOT_TIMEOUT_MS = 10 * 60 * 1000;
const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** live-build's config for the same image: Debian 12, the general kernel, no Recommends, no installer, GRUB for BIOS and UEFI, the serial console. */
const LB_CONFIG = [
  '--distribution', 'bookworm',
  '--archive-areas', 'main',
  '--binary-images', 'iso-hybrid',
  '--bootloaders', 'grub-pc grub-efi',
  '--debian-installer', 'none',
  '--firmware-binary', 'false',
  '--firmware-chroot', 'false',
  '--apt-recommends', 'false',
  '--linux-flavours', 'amd64',
  '--memtest', 'none',
  '--iso-volume', 'LBLIVE',
  '--bootappend-live', 'boot=live components console=tty0 console=ttyS0,115200n8',
  // security.debian.org is not reachable from every build machine; deb.debian.org serves the same
  ...['chroot', 'binary'].flatMap((s) => [
    `--mirror-${s}-security`, 'http://deb.debian.org/debian-security/',
    `--parent-mirror-${s}-security`, 'http://deb.debian.org/debian-security/',
  ]),
]; // prettier-ignore

/** WithDocs=yes: mkosi 14 removes documentation inside systemd-nspawn, which fails on machines without a system bus. */
const GRUB_SERIAL = `
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=3
`;

const MKOSI_CONFIG = `[Distribution]
Distribution=debian
Release=bookworm

[Output]
Format=plain_squashfs
Output=image.squashfs

[Content]
WithDocs=yes
Packages=systemd-sysv,udev,dbus,systemd-resolved,login,passwd,apt,iproute2,ca-certificates,linux-image-amd64
`;

const timed = (f: () => void): number => {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
};

function sh(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stdout + r.stderr).slice(-2000)}`);
}

const installed = (tool: string) => spawnSync('which', [tool]).status === 0;

/** QEMU start to the first login prompt (or autologin) on the serial console. */
async function bootIso(box: Sandbox, iso: string, name: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = box.run(['run', '--detach', '--name', name, '--iso', iso]);
  if (r.code !== 0) throw new Error(r.stderr);
  try {
    for (const started = Date.now(); ;) {
      if (/login: |automatic login/.test(box.consoleLog(name))) break;
      if (Date.now() - started > BOOT_TIMEOUT_MS)
        throw new Error(`${iso} reached no login prompt in ${BOOT_TIMEOUT_MS / 1000} s`);
      await new Promise((res) => setTimeout(res, 100));
    }
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    box.run(['stop', '--force', name]);
    box.run(['rm', name]);
  }
}

/** The drives each ISO is booted from by plain QEMU (one vCPU, as test/helpers/plain-boot.ts boots them). */
const DRIVES: [Drive, Firmware, string][] = [
  ['sata-cd', 'seabios', 'SATA CD drive, q35, SeaBIOS'],
  ['ide-cd', 'seabios', 'IDE CD drive, pc, SeaBIOS'],
  ['usb-stick', 'ovmf', 'USB stick, q35, OVMF'],
];

async function plainBoot(iso: string, drive: Drive, firmware: Firmware, dir: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await bootToLogin(iso, drive, firmware, dir, BOOT_TIMEOUT_MS);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export async function benchImage(): Promise<BenchResult> {
  for (const [tool, pkg] of [
    ['lb', 'live-build'],
    ['mkosi', 'mkosi'],
  ] as const)
    if (!installed(tool)) throw new Error(`bench image needs ${tool}: apt install ${pkg}`);
  const box = new Sandbox();
  const work = mkdtempSync(join(tmpdir(), 'bench-image-'));
  box.env.VMSTUB_CACHE = join(work, 'vmstub-cache');
  const rows: BenchResult['rows'] = [];
  // Each measurement is said as it is made: a later failure does not lose the earlier ones.
  const measured = (label: string, ms: number) => {
    process.stderr.write(`bench: ${label}: ${(ms / 1000).toFixed(1)} s\n`);
    rows.push({ label, values: [ms] });
  };
  const sizes: string[] = [];
  try {
    // vmstub: one config and one hook.
    const config = join(work, 'live.yaml');
    const hook = join(work, 'hook.sh');
    const writeHook = (marker: string) => {
      writeFileSync(
        hook,
        `#!/bin/sh\nset -e\nmkdir -p "$1/etc/issue.d"\necho '${marker}' > "$1/etc/issue.d/bench.issue"\n`,
      );
      chmodSync(hook, 0o755);
    };
    writeHook('bench one');
    writeFileSync(config, 'name: live\ndistro: debian12\nhook: hook.sh\nformats: [squashfs, iso]\n');
    const out = join(work, 'vmstub-out');
    const vmstub = () =>
      timed(() => {
        const r = box.run(['image', 'build', config, '--out', out], { timeoutMs: 60 * 60 * 1000 });
        if (r.code !== 0) throw new Error(`vmstub image build failed: ${r.stderr}`);
      });
    measured('vmstub image build: cold (every stage built)', vmstub());
    measured('vmstub image build: nothing changed (every stage cached)', vmstub());
    writeHook('bench two');
    measured('vmstub image build: after a hook change (root and iso rebuilt)', vmstub());
    const ours = join(out, 'live.iso');
    sizes.push(`vmstub's ISO ${MiB(statSync(ours).size)}`);

    // live-build: lb config && lb build; again after lb clean (its package and bootstrap caches stay).
    const lb = join(work, 'live-build');
    mkdirSync(join(lb, 'config', 'hooks', 'live'), { recursive: true });
    sh('lb', ['config', ...LB_CONFIG], lb);
    // live-build's GRUB menu waits for a key on the screen; a user who wants the serial console edits
    // their copy of its config, as live-build's manual says.
    const grub = join(lb, 'config', 'bootloaders', 'grub-pc');
    mkdirSync(join(lb, 'config', 'bootloaders'), { recursive: true });
    sh('cp', ['-r', '/usr/share/live/build/bootloaders/grub-pc', grub], lb);
    appendFileSync(join(grub, 'config.cfg'), GRUB_SERIAL);
    const lbHook = join(lb, 'config', 'hooks', 'live', '9000-bench.hook.chroot');
    const writeLbHook = (marker: string) => {
      writeFileSync(
        lbHook,
        `#!/bin/sh\nset -e\nmkdir -p /etc/issue.d\necho '${marker}' > /etc/issue.d/bench.issue\n`,
      );
      chmodSync(lbHook, 0o755);
    };
    writeLbHook('bench one');
    const lbBuild = () => timed(() => sh('lb', ['build'], lb));
    measured('live-build (lb config && lb build): cold', lbBuild());
    // lb clean keeps its caches (packages, the bootstrap stage) and forgets the config stage.
    const again = () => timed(() => ['clean', 'config', 'build'].forEach((c) => sh('lb', [c], lb)));
    measured('live-build: lb clean && lb config && lb build, nothing changed', again());
    writeLbHook('bench two');
    measured('live-build: the same, after a hook change', again());
    const theirs = readdirSync(lb).find((f) => f.endsWith('.iso'));
    if (!theirs) throw new Error('live-build made no ISO');
    sizes.push(`live-build's ${MiB(statSync(join(lb, theirs)).size)}`);

    for (const [label, iso] of [
      ["vmstub's ISO", ours],
      ["live-build's ISO", join(lb, theirs)],
    ] as const) {
      for (const [drive, firmware, kind] of DRIVES)
        measured(
          `QEMU start to login prompt, ${label}, ${kind}`,
          await plainBoot(iso, drive, firmware, work),
        );
      measured(
        `QEMU start to login prompt, ${label}, vmstub run --iso (virtio-scsi CD, SeaBIOS)`,
        await bootIso(box, iso, 'bench-iso'),
      );
    }

    // mkosi: the nearest image it makes, a squashfs of the same release (no ISO in mkosi 14).
    const mk = join(work, 'mkosi');
    mkdirSync(join(mk, 'cache'), { recursive: true });
    writeFileSync(join(mk, 'mkosi.conf'), MKOSI_CONFIG);
    const mkosi = () => timed(() => sh('mkosi', ['--cache', join(mk, 'cache'), '--force', 'build'], mk));
    measured('mkosi build, plain_squashfs: cold', mkosi());
    measured('mkosi build, plain_squashfs: again (package cache warm)', mkosi());
    const squashfs = join(mk, 'image.squashfs');
    if (existsSync(squashfs)) sizes.push(`mkosi's squashfs ${MiB(statSync(squashfs).size)}`);
    sizes.push(`vmstub's squashfs ${MiB(statSync(join(out, 'live.squashfs')).size)}`);
    return {
      name: 'image builder',
      description: `A minimal Debian 12 live ISO (Debian's general kernel, no Recommends, a hook writing /etc/issue.d), from Debian's mirror, live-build ${execFileSync('lb', ['--version'], { encoding: 'utf8' }).trim().split('\n')[0]} and mkosi ${execFileSync(
        'mkosi',
        ['--version'],
        { encoding: 'utf8' },
      )
        .trim()
        .replace(
          /^mkosi /,
          '',
        )} in the same run. Boots under TCG: by plain QEMU with 1 vCPU, by vmstub run with 2.`,
      rows,
      summary: `Sizes: ${sizes.join(', ')}.`,
    };
  } finally {
    box.cleanup();
    rmSync(work, { recursive: true, force: true });
  }
}
