/**
 * The handoff by the host ("direct boot"), for stubs that cannot kexec (riscv64: Debian 13 has no
 * kexec-tools for it). The stub's handoff finds the installed kernel as always, then, instead of
 * kexec, writes it, its initramfs and its command line to the virtio-serial port BOOT_EXPORT_PORT and
 * powers off; the host's supervisor checks what arrived and starts QEMU again with them as -kernel,
 * -initrd and -append. docs/architecture.md, "Direct boot".
 *
 * On the port: one JSON line (the header), then the kernel's bytes, then the initramfs's. A header
 * that says `unchanged` carries no files: the host's copy (its digests came in through fw_cfg) is
 * still what the installed system boots.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../vm/store.js';

export const BOOT_EXPORT_PORT = 'org.vmstub.boot';
/** On the stub's command line: hand over by the host even where kexec would work (run --handoff host). */
export const HOST_HANDOFF_ARG = 'vmstub.handoff=host';

export interface ExportedFile {
  /** Where it is in the installed system (for messages). */
  path: string;
  size: number;
  sha256: string;
}

export interface BootExportHeader {
  vmstubBootExport: 1;
  cmdline: string;
  kernel: ExportedFile;
  initrd?: ExportedFile;
  /** The host's copy has these digests already: no bytes follow. */
  unchanged?: boolean;
}

export interface BootExport {
  header: BootExportHeader;
  kernel?: Buffer;
  initrd?: Buffer;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** The digests the host passes to the stub: kernel and initramfs, space-separated ('-' for none). */
export const digestsLine = (kernel: string, initrd?: string): string => `${kernel} ${initrd ?? '-'}`;

/** Everything the stub writes to the port, as one buffer (a few tens of MB at most). */
export function encodeBootExport(
  files: { kernel: { path: string; data: Buffer }; initrd?: { path: string; data: Buffer } },
  cmdline: string,
  hostDigests?: string,
): Buffer {
  const describe = (f: { path: string; data: Buffer }): ExportedFile => ({
    path: f.path,
    size: f.data.length,
    sha256: sha256(f.data),
  });
  const kernel = describe(files.kernel);
  const initrd = files.initrd && describe(files.initrd);
  const unchanged = hostDigests === digestsLine(kernel.sha256, initrd?.sha256);
  const header: BootExportHeader = { vmstubBootExport: 1, cmdline, kernel, initrd, unchanged };
  const line = Buffer.from(JSON.stringify(header) + '\n');
  if (unchanged) return line;
  return Buffer.concat([line, files.kernel.data, ...(files.initrd ? [files.initrd.data] : [])]);
}

/**
 * What the host received, checked: undefined when the port carried nothing, else the export, or an
 * error saying what is wrong with it (cut short, a digest that does not match).
 */
export function decodeBootExport(data: Buffer): BootExport | undefined {
  if (!data.length) return undefined;
  const newline = data.indexOf(0x0a);
  if (newline < 0) throw new Error('the boot files from the stub end inside their header');
  let header: BootExportHeader;
  try {
    header = JSON.parse(data.subarray(0, newline).toString('utf8')) as BootExportHeader;
  } catch {
    throw new Error('the boot files from the stub have no readable header');
  }
  if (header.vmstubBootExport !== 1 || !header.kernel || typeof header.cmdline !== 'string')
    throw new Error('the boot files from the stub have a header of an unknown kind');
  if (header.unchanged) return { header };
  let at = newline + 1;
  const take = (f: ExportedFile, what: string): Buffer => {
    const bytes = data.subarray(at, at + f.size);
    if (bytes.length !== f.size)
      throw new Error(`the ${what} from the stub is cut short (${bytes.length} of ${f.size} bytes)`);
    if (sha256(bytes) !== f.sha256) throw new Error(`the ${what} from the stub does not match its sha256`);
    at += f.size;
    return bytes;
  };
  const kernel = take(header.kernel, 'kernel');
  const initrd = header.initrd && take(header.initrd, 'initramfs');
  return { header, kernel, initrd };
}

/** The direct boot files the host keeps for an instance. */
export interface DirectBoot {
  kernel: string;
  initrd?: string;
  cmdline: string;
  /** What the stub reported, for fw_cfg next time. */
  digests: string;
}

const META = 'meta.json';

export function readDirectBoot(dir: string): DirectBoot | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(dir, META), 'utf8')) as {
      cmdline: string;
      digests: string;
      initrd: boolean;
    };
    return {
      kernel: join(dir, 'kernel'),
      initrd: meta.initrd ? join(dir, 'initrd') : undefined,
      cmdline: meta.cmdline,
      digests: meta.digests,
    };
  } catch {
    return undefined;
  }
}

/**
 * Keeps what the stub sent in dir (kernel, initrd, meta.json last, so a half-written set is never
 * read), or, when it said unchanged, updates only the command line. Returns the files to boot.
 */
export function keepDirectBoot(dir: string, received: BootExport): DirectBoot {
  const { header } = received;
  const digests = digestsLine(header.kernel.sha256, header.initrd?.sha256);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!header.unchanged) {
    rmSync(join(dir, META), { force: true });
    writeFileAtomic(join(dir, 'kernel'), received.kernel!);
    if (received.initrd) writeFileAtomic(join(dir, 'initrd'), received.initrd);
    else rmSync(join(dir, 'initrd'), { force: true });
  } else if (readDirectBoot(dir)?.digests !== digests) {
    throw new Error('the stub said the boot files are unchanged, but the host has no such copy');
  }
  const meta = { cmdline: header.cmdline, digests, initrd: Boolean(header.initrd) };
  writeFileAtomic(join(dir, META), JSON.stringify(meta) + '\n');
  return readDirectBoot(dir)!;
}
