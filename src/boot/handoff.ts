import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fwCfgGuestPath } from '../events/protocol.js';
import { EventSink, findVirtioPort } from '../events/sink.js';
import { BOOT_EXPORT_PORT, HOST_HANDOFF_ARG, encodeBootExport } from './boot-export.js';
import { oneLine } from '../util/errors.js';
import { run as runTool, which, type ExecOptions } from '../util/exec.js';
import { parseImageCmdline } from '../vm/system-image.js';
import { detectKernelFormat, unpackZboot } from './kernel-image.js';
import { initrdWithKey } from './initrd-key.js';
import {
  findInstalledKernel,
  isUnfinishedInstall,
  fstabHasRoot,
  handoffCommandLine,
  resolveInTree,
  type HandoffRoot,
  type KernelChoice,
} from './discover.js';

const MOUNT_POINT = '/run/vmstub/installed';

const debug = (() => {
  try {
    return /(^|\s)vmstub\.debug(\s|$)/.test(readFileSync('/proc/cmdline', 'utf8'));
  } catch {
    return false;
  }
})();

/**
 * Runs a tool found on PATH or in the sbin directories. With vmstub.debug on the kernel command line,
 * each run is said with its duration (the handoff is on every boot's critical path).
 */
async function run(tool: string, args: readonly string[], opts?: ExecOptions) {
  const started = Date.now();
  const result = await runTool(which(tool) ?? tool, args, opts);
  if (debug)
    process.stdout.write(
      `vmstub-handoff: ${tool} ${args.slice(0, 2).join(' ')}: ${Date.now() - started} ms\n`,
    );
  return result;
}

/** Cleanup that must not turn a handled failure into a crash. */
async function quietly(tool: string, args: string[]): Promise<void> {
  try {
    await run(tool, args);
  } catch {
    // the tool is missing or failed: nothing more to undo
  }
}
const LUKS_NAME = 'vmstub-installed';
export const LUKS_PASSPHRASE_FW_CFG = fwCfgGuestPath('luksPassphrase');

/** Mount options that read a filesystem without replaying its journal: the handoff never writes. */
export function readOnlyMountOptions(fsType: string): string {
  switch (fsType) {
    case 'xfs':
      return 'ro,norecovery';
    case 'ext3':
    case 'ext4':
      return 'ro,noload';
    case 'btrfs':
      return 'ro,rescue=nologreplay';
    default:
      return 'ro';
  }
}

/** `blkid -p -o export` output as a map. */
export function parseBlkid(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

async function probe(dev: string): Promise<Record<string, string>> {
  const r = await run('blkid', ['-p', '-o', 'export', dev]);
  return parseBlkid(r.stdout.toString('utf8'));
}

/** The data disk, or each of its partitions: udev-style links made by the stub's initramfs. */
function dataDevices(byId = '/dev/disk/by-id'): string[] {
  const disk = join(byId, 'virtio-data');
  if (!existsSync(disk)) return [];
  const parts = readdirSync(byId)
    .filter((n) => /^virtio-data-part\d+$/.test(n))
    .sort((a, b) => Number(a.slice(16)) - Number(b.slice(16)))
    .map((n) => join(byId, n));
  return parts.length ? parts : [disk];
}

/** The tags of the virtiofs shares the guest sees. */
function virtioTags(): string[] {
  const dir = '/sys/fs/virtiofs';
  if (!existsSync(dir)) return [];
  const tags: string[] = [];
  for (const d of readdirSync(dir)) {
    const f = join(dir, d, 'tag');
    if (existsSync(f)) tags.push(readFileSync(f, 'utf8').replace(/\0/g, '').trim());
  }
  return tags;
}

/** How many passphrases the console is asked for before the stub boots on. */
const CONSOLE_TRIES = 3;

/** A line typed on the console without echo (the passphrase), or undefined when the console ended. */
async function readConsoleSecret(): Promise<string | undefined> {
  return new Promise((resolve) => {
    let typed = '';
    const child = spawn(
      which('sh') ?? 'sh',
      // The prompt only once echo is off: what is typed after it is never shown (or kept in a console log).
      [
        '-c',
        'stty -echo 2>/dev/null; printf "Passphrase: " >&2; IFS= read -r line; s=$?; stty echo 2>/dev/null; echo >&2; printf %s "$line"; exit $s',
      ],
      { stdio: ['inherit', 'pipe', 'inherit'] },
    );
    child.stdout.on('data', (d: Buffer) => (typed += d.toString('utf8')));
    child.on('exit', (code) => resolve(code === 0 ? typed : undefined));
  });
}

/**
 * Opens a LUKS container read-only with the host's passphrase (fw_cfg), or with one typed on the
 * console; returns the mapped device and the passphrase that opened it (for the system's initramfs).
 */
async function openLuks(
  dev: string,
  log: (s: string) => void,
): Promise<{ device: string; passphrase: string }> {
  await run('modprobe', ['-q', 'dm_crypt']);
  await run('modprobe', ['-q', 'qemu_fw_cfg']);
  const open = (passphrase: string) =>
    run('cryptsetup', ['open', '--readonly', '--type', 'luks', '--key-file=-', dev, LUKS_NAME], {
      input: passphrase,
    });
  const opened = (passphrase: string) => ({ device: `/dev/mapper/${LUKS_NAME}`, passphrase });
  if (existsSync(LUKS_PASSPHRASE_FW_CFG)) {
    const passphrase = readFileSync(LUKS_PASSPHRASE_FW_CFG, 'utf8');
    const r = await open(passphrase);
    if (r.code === 0) return opened(passphrase);
    throw new Error(
      `the host's passphrase does not open ${dev}: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}`,
    );
  }
  for (let tried = 1; ; tried++) {
    log(`${dev} is encrypted: type its passphrase`);
    const passphrase = await readConsoleSecret();
    if (passphrase === undefined)
      throw new Error(`${dev} is encrypted, and no passphrase could be read from the console`);
    const r = await open(passphrase);
    if (r.code === 0) return opened(passphrase);
    // 2 is cryptsetup's "no key available with this passphrase"; anything else is not the typist's.
    if (r.code !== 2)
      throw new Error(
        `cryptsetup cannot open ${dev}: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}`,
      );
    if (tried === CONSOLE_TRIES)
      throw new Error(`no passphrase typed on the console opened ${dev} (${CONSOLE_TRIES} tries)`);
    log(
      `that passphrase does not open ${dev} (${CONSOLE_TRIES - tried} ${CONSOLE_TRIES - tried === 1 ? 'try' : 'tries'} left)`,
    );
  }
}

interface Found {
  choice: KernelChoice;
  root: HandoffRoot;
  /** The installed kernel's command line, as loaded. */
  cmdline: string;
  /** Loaded for kexec, or sent to the host to boot (no kexec in this stub); unchanged: the host has it. */
  via: 'kexec' | { host: { unchanged: boolean } };
}

/** The stub image's own kernel arguments (its boot/cmdline), which the installed kernel must not get. */
function stubImageArgs(): string[] {
  return existsSync('/boot/cmdline')
    ? (parseImageCmdline(readFileSync('/boot/cmdline', 'utf8')) ?? '').split(' ')
    : [];
}

/**
 * Finds the kernel of the system whose root filesystem is mounted at tree and loads it for kexec, with
 * the command line the handoff gives it. Used by the boot handoff, and by the installer to start the
 * system it just installed without a round trip through the stub.
 */
export async function loadInstalledKernel(
  tree: string,
  root: HandoffRoot,
  log: (s: string) => void,
  passphrase?: string,
): Promise<Found | undefined> {
  if (isUnfinishedInstall(tree)) {
    log(
      `${root.device} holds an install that did not finish; not starting it (vmstub resume NAME on the host)`,
    );
    return undefined;
  }
  const choice = findInstalledKernel(tree);
  if (!choice) return undefined;
  const fstabPath = resolveInTree(tree, '/etc/fstab');
  const fstab = fstabPath && existsSync(fstabPath) ? readFileSync(fstabPath, 'utf8') : '';
  const stubCmdline = readFileSync('/proc/cmdline', 'utf8').trim();
  const cmdline = handoffCommandLine({
    stubCmdline,
    stubImageArgs: stubImageArgs(),
    root,
    fstabHasRoot: fstabHasRoot(fstab),
    blsOptions: choice.options,
  });
  let via: Found['via'] = 'kexec';
  const hasKexec = which('kexec') !== undefined;
  if (hasKexec && !stubCmdline.split(/\s+/).includes(HOST_HANDOFF_ARG)) {
    log(`found ${choice.name} (${choice.source}) on ${root.device}; loading it with: ${cmdline}`);
    const initrd = singleInitrd(choice.initrds);
    if (passphrase === undefined) await kexecLoad(choice.kernel, initrd, cmdline);
    else {
      // The encrypted root's passphrase goes on to the system's initramfs, so no one types it twice;
      // the kernel holds its own copy once loaded, and the file goes at once.
      const keyed = keyedInitrd(initrd, passphrase);
      try {
        await kexecLoad(choice.kernel, keyed, cmdline);
      } finally {
        rmSync(keyed, { force: true });
      }
    }
  } else {
    log(
      `found ${choice.name} (${choice.source}) on ${root.device}; ${hasKexec ? 'the host was asked to boot it' : 'this stub has no kexec: the host boots it'}, with: ${cmdline}`,
    );
    via = { host: await sendToHost(choice, tree, cmdline) };
  }
  return {
    via,
    choice: {
      ...choice,
      kernel: choice.kernel.slice(tree.length),
      initrds: choice.initrds.map((p) => p.slice(tree.length)),
    },
    root,
    cmdline,
  };
}

/**
 * The host's handoff: the kernel, initramfs and command line go to the host over the boot-export port
 * (src/boot/boot-export.ts), or only word that the host's copy is current.
 */
async function sendToHost(
  choice: KernelChoice,
  tree: string,
  cmdline: string,
): Promise<{ unchanged: boolean }> {
  const port = findVirtioPort(BOOT_EXPORT_PORT);
  if (!port)
    throw new Error(
      `this stub has no kexec, and the VM has no ${BOOT_EXPORT_PORT} port to give the host the kernel: boot it with vmstub run or vmstub start, which add that port`,
    );
  await run('modprobe', ['-q', 'qemu_fw_cfg']);
  const digestsFile = fwCfgGuestPath('bootDigests');
  const hostDigests = existsSync(digestsFile) ? readFileSync(digestsFile, 'utf8').trim() : undefined;
  const initrd = singleInitrd(choice.initrds);
  const data = encodeBootExport(
    {
      kernel: { path: choice.kernel.slice(tree.length), data: readFileSync(choice.kernel) },
      initrd: initrd
        ? { path: initrd.startsWith(tree) ? initrd.slice(tree.length) : initrd, data: readFileSync(initrd) }
        : undefined,
    },
    cmdline,
    hostDigests,
  );
  writeFileSync(port, data);
  return { unchanged: data.indexOf(0x0a) === data.length - 1 };
}

/** Mounts one candidate read-only, looks for an installed kernel and loads it, then unmounts, whatever happened. */
async function inspect(
  source: string,
  fsType: string,
  options: string,
  root: HandoffRoot,
  log: (s: string) => void,
  passphrase?: string,
): Promise<Found | undefined> {
  mkdirSync(MOUNT_POINT, { recursive: true });
  await run('modprobe', ['-q', fsType]);
  const m = await run('mount', ['-t', fsType, '-o', options, source, MOUNT_POINT]);
  if (m.code !== 0) {
    log(`cannot mount ${source} (${fsType}): ${m.stderr.trim().split('\n').pop()}`);
    return undefined;
  }
  try {
    return await loadInstalledKernel(MOUNT_POINT, root, log, passphrase);
  } finally {
    await quietly('umount', [MOUNT_POINT]);
  }
}

async function findOnDataDisk(log: (s: string) => void): Promise<Found | undefined> {
  for (const dev of dataDevices()) {
    let id = await probe(dev);
    let source = dev;
    let luksUuid: string | undefined;
    let passphrase: string | undefined;
    if (id.TYPE === 'crypto_LUKS') {
      luksUuid = id.UUID;
      ({ device: source, passphrase } = await openLuks(dev, log));
      id = await probe(source);
    }
    if (!id.TYPE) {
      if (luksUuid) await quietly('cryptsetup', ['close', LUKS_NAME]);
      continue;
    }
    await run('blockdev', ['--setro', source]);
    try {
      const found = await inspect(
        source,
        id.TYPE,
        readOnlyMountOptions(id.TYPE),
        { uuid: id.UUID, device: source, fsType: id.TYPE, luksUuid },
        log,
        passphrase,
      );
      if (found) return found;
    } finally {
      await quietly('blockdev', ['--setrw', source]);
      if (luksUuid) await quietly('cryptsetup', ['close', LUKS_NAME]);
    }
  }
  return undefined;
}

/** A virtiofs share tagged fs. (Not 9p: the stub's kernel, Debian's cloud kernel, has no 9p.) */
async function findOnShare(log: (s: string) => void): Promise<Found | undefined> {
  if (!virtioTags().includes('fs')) return undefined;
  return inspect('fs', 'virtiofs', 'ro', { device: 'fs', fsType: 'virtiofs' }, log);
}

/** The initramfs and, after it, the passphrase (src/boot/initrd-key.ts), in the stub's memory (tmpfs). */
function keyedInitrd(initrd: string | undefined, passphrase: string): string {
  if (!initrd) throw new Error('the installed kernel has no initramfs to open its encrypted root with');
  const out = '/run/vmstub/kexec-initrd-keyed';
  writeFileSync(out, initrdWithKey(readFileSync(initrd), Buffer.from(passphrase)), { mode: 0o600 });
  return out;
}

/** Several initrds (a BLS entry may list microcode first) become one: the kernel reads concatenated cpio archives. */
function singleInitrd(paths: string[]): string | undefined {
  if (paths.length <= 1) return paths[0];
  const out = '/run/vmstub/kexec-initrd';
  writeFileSync(out, Buffer.concat(paths.map((p) => readFileSync(p))));
  return out;
}

/**
 * Loads the kernel with kexec_load and no purgatory checksums (-i: they guard memory between load and
 * execute, and we execute at once; computing them took 2 s under emulation), falling back to
 * kexec_file_load where kexec_load is refused (lockdown). An EFI zboot kernel kexec-tools cannot load
 * is unpacked and tried again.
 */
async function kexecLoad(kernel: string, initrd: string | undefined, cmdline: string): Promise<void> {
  const args = (k: string, mode: string[]) => [
    '-l',
    ...mode,
    k,
    ...(initrd ? [`--initrd=${initrd}`] : []),
    `--append=${cmdline}`,
  ];
  const load = async (k: string) => {
    const r = await run('kexec', args(k, ['-c', '-i']));
    return r.code === 0 ? r : run('kexec', args(k, ['-s']));
  };
  const first = await load(kernel);
  if (first.code === 0) return;
  const image = readFileSync(kernel);
  const format = detectKernelFormat(image.subarray(0, 4096));
  if (format.kind !== 'efi-zboot') throw new Error(`kexec -l: ${first.stderr.trim().split('\n').pop()}`);
  const payload = unpackZboot(image, format);
  const unpacked = payload.compressed
    ? (await run(payload.compressed === 'zstd' ? 'zstd' : 'xz', ['-dc'], { input: payload.data })).stdout
    : payload.data;
  writeFileSync('/run/vmstub/kexec-kernel-unpacked', unpacked);
  const second = await load('/run/vmstub/kexec-kernel-unpacked');
  if (second.code !== 0) throw new Error(`kexec -l: ${second.stderr.trim().split('\n').pop()}`);
}

/**
 * Why the stub stays: vmstub.nokexec (--stub: the user wants the stub), or, at boot only,
 * vmstub.install (the host asked for an install; whatever the disk holds is not to be started, and the
 * installer hands over itself when it is done).
 */
export function bootSkipReason(cmdline: string, atBoot: boolean): string | undefined {
  const words = cmdline.trim().split(/\s+/);
  if (words.includes('vmstub.nokexec')) return 'vmstub.nokexec';
  if (atBoot && words.includes('vmstub.install')) return 'vmstub.install';
  return undefined;
}

/**
 * The stub's boot handoff: looks for an installed system on the data disk, then on a virtiofs
 * share tagged fs, and kexecs into its kernel. On any failure it says why (console and events) and
 * returns, and the stub boots on. It never formats, never writes to the installed system, and never
 * brings the machine down.
 */
export async function runHandoff(
  log: (line: string) => void,
  events = new EventSink(),
  o: { atBoot: boolean } = { atBoot: true },
): Promise<'kexec' | 'host-boot' | 'nothing-installed' | 'skipped' | 'failed'> {
  const started = Date.now();
  if (debug)
    log(
      `started at ${readFileSync('/proc/uptime', 'utf8').split(' ')[0]}s (Node.js took ${Math.round(process.uptime() * 1000)} ms to get here)`,
    );
  const skip = bootSkipReason(readFileSync('/proc/cmdline', 'utf8'), o.atBoot);
  if (skip) {
    log(`${skip} is set: staying in the stub`);
    events.emit({ type: 'handoff', status: 'skipped', reason: skip });
    return 'skipped';
  }
  try {
    const found = (await findOnDataDisk(log)) ?? (await findOnShare(log));
    if (!found) {
      log('no installed system found; booting the stub');
      events.emit({
        type: 'handoff',
        status: 'nothing-installed',
        reason: 'no kernel on the data disk or a share',
      });
      return 'nothing-installed';
    }
    if (found.via !== 'kexec') {
      events.emit({
        type: 'handoff',
        status: 'host-boot',
        kernel: found.choice.kernel,
        initrds: found.choice.initrds,
        cmdline: found.cmdline,
        source: found.choice.source,
        device: found.root.device,
        unchanged: found.via.host.unchanged,
      });
      log(`the host boots it: powering off after ${Date.now() - started} ms`);
      events.close();
      await quietly('sync', []);
      // Not systemd's poweroff: no systemd runs yet. busybox calls reboot(2) itself.
      const off = await run('busybox', ['poweroff', '-f']);
      throw new Error(`poweroff: ${off.stderr.trim() || `exit ${off.code}`}`);
    }
    events.emit({
      type: 'handoff',
      status: 'kexec',
      kernel: found.choice.kernel,
      initrds: found.choice.initrds,
      cmdline: found.cmdline,
      source: found.choice.source,
      device: found.root.device,
    });
    log(`handing over after ${Date.now() - started} ms`);
    events.close();
    // kexec -e does not write back dirty data (an install may just have finished).
    await quietly('sync', []);
    const exec = await run('kexec', ['-e']);
    throw new Error(`kexec -e: ${exec.stderr.trim() || `exit ${exec.code}`}`);
  } catch (e) {
    const reason = oneLine(e);
    log(`handoff failed: ${reason}; booting the stub`);
    events.emit({ type: 'handoff', status: 'failed', reason });
    await quietly('kexec', ['-u']);
    return 'failed';
  }
}
