/**
 * Test fixtures built from real parts: Debian's linux-image-cloud-amd64 kernel (downloaded once into a
 * cache outside the checkout) and a busybox initramfs written here.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const isRoot = process.getuid?.() === 0;

/** Downloads and derived fixtures shared by all test runs on this machine. */
export function testCacheDir(): string {
  const dir =
    process.env.VMSTUB_TEST_CACHE ??
    (isRoot ? '/var/cache/vmstub-test' : join(homedir(), '.cache', 'vmstub-test'));
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface FixtureKernel {
  version: string;
  vmlinuz: string;
  /** The package's extracted root; lib/modules/VERSION has modules.dep. */
  root: string;
}

function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 30,
  });
}

/** Debian's cloud kernel for this host's release, fetched with apt once and kept in the test cache. */
export function fixtureKernel(): FixtureKernel {
  const base = join(testCacheDir(), 'kernel');
  mkdirSync(base, { recursive: true });
  const ready = readdirSync(base)
    .filter((d) => existsSync(join(base, d, '.complete')))
    .sort();
  const cached = ready[ready.length - 1];
  if (cached) return kernelAt(join(base, cached), cached);

  const deps = sh('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const pkg = /Depends: (linux-image-[^\s]+-cloud-amd64)/.exec(deps)?.[1];
  if (!pkg) throw new Error('cannot find the package behind linux-image-cloud-amd64 (run apt-get update)');
  const version = pkg.replace(/^linux-image-/, '');
  const work = mkdtempSync(join(base, '.download-'));
  sh('apt-get', ['download', '-q', pkg], work);
  const deb = readdirSync(work).find((f) => f.endsWith('.deb'))!;
  const root = join(work, 'root');
  sh('dpkg-deb', ['-x', join(work, deb), root]);
  sh('depmod', ['-b', root, version]);
  rmSync(join(work, deb));
  writeFileSync(join(work, '.complete'), '');
  const final = join(base, version);
  renameSync(work, final);
  return kernelAt(final, version);
}

function kernelAt(dir: string, version: string): FixtureKernel {
  return { version, vmlinuz: join(dir, 'root', 'boot', `vmlinuz-${version}`), root: join(dir, 'root') };
}

/** The modules named plus everything they depend on, as paths relative to lib/modules/VERSION. */
export function moduleClosure(kernel: FixtureKernel, names: string[]): string[] {
  const modDir = join(kernel.root, 'lib', 'modules', kernel.version);
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of readFileSync(join(modDir, 'modules.dep'), 'utf8').split('\n')) {
    const [mod, rest] = line.split(':');
    if (!mod) continue;
    deps.set(mod, (rest ?? '').trim().split(/\s+/).filter(Boolean));
    byName.set(
      mod
        .replace(/^.*\//, '')
        .replace(/\.ko(\.\w+)?$/, '')
        .replace(/-/g, '_'),
      mod,
    );
  }
  const out = new Set<string>();
  const visit = (mod: string) => {
    if (out.has(mod)) return;
    out.add(mod);
    for (const d of deps.get(mod) ?? []) visit(d);
  };
  for (const n of names) {
    const mod = byName.get(n.replace(/-/g, '_'));
    if (!mod) throw new Error(`module ${n} is not in ${kernel.version}`);
    visit(mod);
  }
  return [...out];
}

/** Modules the fixture guest loads, in order (modprobe pulls in their dependencies). */
export const FIXTURE_MODULES = [
  'virtio_pci',
  'virtio_blk',
  'virtio_net',
  'virtio_console',
  'qemu_fw_cfg',
  'button',
  'evdev',
  'virtiofs',
  'isofs',
];

/**
 * The fixture guest's /init: prints markers the tests look for, brings up the network statically
 * (QEMU user networking), serves HTTP on port 80 and an SSH-like banner on 22, mounts the share tagged
 * fs, lists the files of a cidata seed (with their sha256) as Linux's isofs reads them, powers off on the ACPI power button unless `fixture.noacpi` is on the command line, then runs a
 * shell on the console.
 */
export const FIXTURE_INIT = `#!/bin/sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp /mnt/fs /www /etc/acpi/PWRF
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /etc/fixture-modules); do modprobe $m 2>/dev/null; done
grep -q console=hvc0 /proc/cmdline && exec 0<>/dev/hvc0 1>&0 2>&0
echo "VMSTUB-FIXTURE-BOOTED"
for d in /sys/block/vd*; do [ -e "$d/serial" ] && echo "DISK $(basename $d) serial=$(cat $d/serial) sectors=$(cat $d/size)"; done
for f in /sys/firmware/qemu_fw_cfg/by_name/opt/*/raw /sys/firmware/qemu_fw_cfg/by_name/opt/*/*/raw; do
  [ -r "$f" ] && echo "FWCFG $(echo $f | sed 's|/sys/firmware/qemu_fw_cfg/by_name/||; s|/raw$||')=$(cat $f)"
done
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
echo fixture-http-ok > /www/index.html
httpd -p 80 -h /www
(while true; do echo SSH-2.0-vmstub-fixture | nc -l -p 22 >/dev/null 2>&1; done) &
if mount -t virtiofs fs /mnt/fs 2>/dev/null; then
  echo "SHARE $(grep ' /mnt/fs ' /proc/mounts | cut -d' ' -f3) $(cat /mnt/fs/marker 2>/dev/null)"
fi
for d in /sys/block/vd*; do
  [ "$(cat $d/serial 2>/dev/null)" = cidata ] || continue
  mkdir -p /mnt/seed && mount -t iso9660 -o ro /dev/$(basename $d) /mnt/seed || continue
  for f in /mnt/seed/*; do echo "SEED $(basename $f) $(sha256sum < $f | cut -d' ' -f1)"; done
done
if ! grep -q fixture.noacpi /proc/cmdline; then
  printf '#!/bin/sh\\necho VMSTUB-FIXTURE-POWEROFF > /dev/console\\npoweroff -f\\n' > /etc/acpi/PWRF/00000080
  chmod +x /etc/acpi/PWRF/00000080
  acpid -c /etc/acpi -l /tmp/acpid.log
fi
echo "VMSTUB-FIXTURE-READY"
exec sh
`;

/** Writes a gzip'd newc cpio with busybox, the init script and the module closure. */
export function buildBusyboxInitramfs(
  kernel: FixtureKernel,
  out: string,
  init = FIXTURE_INIT,
  modules = FIXTURE_MODULES,
  busybox = '/bin/busybox',
): void {
  const stage = mkdtempSync(join(tmpdir(), 'vmstub-initramfs-'));
  try {
    for (const d of ['bin', 'etc', 'lib/modules']) mkdirSync(join(stage, d), { recursive: true });
    copyFileSync(busybox, join(stage, 'bin', 'busybox'));
    chmodSync(join(stage, 'bin', 'busybox'), 0o755);
    symlinkSync('busybox', join(stage, 'bin', 'sh'));
    writeFileSync(join(stage, 'init'), init, { mode: 0o755 });
    writeFileSync(join(stage, 'etc', 'fixture-modules'), modules.join('\n') + '\n');
    const src = join(kernel.root, 'lib', 'modules', kernel.version);
    const dst = join(stage, 'lib', 'modules', kernel.version);
    mkdirSync(dst, { recursive: true });
    for (const rel of moduleClosure(kernel, modules)) {
      mkdirSync(dirname(join(dst, rel)), { recursive: true });
      copyFileSync(join(src, rel), join(dst, rel));
    }
    sh('depmod', ['-b', stage, kernel.version]);
    const files = sh('find', ['.', '-mindepth', '1'], stage);
    const cpio = execFileSync('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], {
      cwd: stage,
      input: files,
      maxBuffer: 1 << 30,
    });
    writeFileSync(out, execFileSync('gzip', ['-1', '-n'], { input: cpio, maxBuffer: 1 << 30 }));
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export interface FixtureImage {
  image: string;
  kernel: FixtureKernel;
  initramfs: string;
}

/** A system image as vmstub boots it: boot/kernel and boot/initramfs are relative symlinks, as in real images. */
export function fixtureSystemImage(): FixtureImage {
  const kernel = fixtureKernel();
  const dir = join(testCacheDir(), 'fixture-image');
  const image = join(dir, `fixture-${kernel.version}.squashfs`);
  const initramfs = join(dir, `initramfs-${kernel.version}.img`);
  const stamp = join(
    dir,
    `.init-${createHash('sha256')
      .update(FIXTURE_INIT + FIXTURE_MODULES.join())
      .digest('hex')
      .slice(0, 16)}`,
  );
  if (existsSync(image) && existsSync(stamp)) return { image, kernel, initramfs };
  rmSync(dir, { recursive: true, force: true });
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'boot'), { recursive: true });
  copyFileSync(kernel.vmlinuz, join(tree, 'boot', `vmlinuz-${kernel.version}`));
  buildBusyboxInitramfs(kernel, initramfs);
  copyFileSync(initramfs, join(tree, 'boot', `initramfs-${kernel.version}.img`));
  symlinkSync(`vmlinuz-${kernel.version}`, join(tree, 'boot', 'kernel'));
  symlinkSync(`/boot/initramfs-${kernel.version}.img`, join(tree, 'boot', 'initramfs'));
  sh('mksquashfs', [tree, image, '-noappend', '-quiet', '-comp', 'zstd', '-all-root']);
  rmSync(tree, { recursive: true, force: true });
  writeFileSync(stamp, '');
  return { image, kernel, initramfs };
}
