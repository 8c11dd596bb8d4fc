/**
 * The passphrase of an encrypted root on the host: read from a file (its first line) or typed at the
 * terminal, then kept owner-only with the instance (unlock: host) or only for the install's boot
 * (unlock: console). It reaches the VM by fw_cfg alone; it is never logged or written into a spec.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fwCfgName } from '../events/protocol.js';
import { conflictError, usageError } from '../util/errors.js';
import { requireTool, run, runChecked } from '../util/exec.js';

/** cryptsetup reads at most this much of a key file, and no one types more. */
const MAX_PASSPHRASE = 512;

/** Why a passphrase will not do, or undefined. */
export function passphraseProblem(passphrase: string): string | undefined {
  if (!passphrase) return 'is empty';
  if (Buffer.byteLength(passphrase) > MAX_PASSPHRASE) return `is longer than ${MAX_PASSPHRASE} bytes`;
  return undefined;
}

/** The first line of a key file; one clear line for a file that is missing, unreadable or empty. */
export function passphraseFromFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw usageError(
      `--key-file ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'cannot be read (permission denied)' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`,
    );
  }
  const line = text.split('\n')[0]!.replace(/\r$/, '');
  const problem = passphraseProblem(line);
  if (problem) throw usageError(`--key-file ${file}: its first line ${problem}`);
  return line;
}

/** How a command asks for a passphrase at the terminal (no echo), or undefined without one. */
export type AskPassphrase = (prompt: string) => Promise<string>;

/**
 * A new passphrase: from the file, else typed twice; refused before any work is done. forWhat starts
 * the line that asks for a file when there is no terminal.
 */
export async function newPassphrase(
  keyFile: string | undefined,
  ask: AskPassphrase | undefined,
  forWhat = '--encrypt',
): Promise<string> {
  if (keyFile) return passphraseFromFile(keyFile);
  if (!ask)
    throw usageError(`${forWhat}: give the passphrase with --key-file FILE (there is no terminal to ask at)`);
  const first = await ask('Passphrase for the encrypted root: ');
  const problem = passphraseProblem(first);
  if (problem) throw usageError(`the passphrase ${problem}`);
  if ((await ask('The same again: ')) !== first)
    throw usageError('the two passphrases differ; nothing was made');
  return first;
}

/** The passphrase in a file QEMU reads for fw_cfg: owner-only, no newline (the bytes cryptsetup is given). */
export function writePassphrase(file: string, passphrase: string): void {
  writeFileSync(file, passphrase, { mode: 0o600 });
}

/** The fw_cfg item that gives the host's passphrase file to every boot (--unlock host). */
export const passphraseFwCfg = (file: string): { name: string; file: string } => ({
  name: fwCfgName('luksPassphrase'),
  file,
});

/** LUKS2's header and key slots: the first 16 MiB of the container (cryptsetup's default data offset). */
const LUKS_HEADER_BYTES = 16 << 20;

/**
 * Whether passphrase opens the LUKS container at the start of an instance's disk, asked of cryptsetup
 * on the host against a copy of the header (the disk may be qcow2, and is never opened or changed).
 */
export async function passphraseOpens(
  disk: { path: string; format: 'raw' | 'qcow2' },
  passphrase: string,
  workDir: string,
): Promise<boolean> {
  const cryptsetup = requireTool('cryptsetup', 'cryptsetup-bin');
  const header = join(workDir, `luks-header-${process.pid}`);
  try {
    await runChecked(requireTool('qemu-img', 'qemu-utils'), [
      'dd',
      '-f',
      disk.format,
      '-O',
      'raw',
      `bs=${1 << 20}`,
      `count=${LUKS_HEADER_BYTES >> 20}`,
      `if=${disk.path}`,
      `of=${header}`,
    ]);
    const luks = await run(cryptsetup, ['isLuks', header]);
    if (luks.code !== 0) throw conflictError(`${disk.path} holds no LUKS container`);
    const r = await run(cryptsetup, ['open', '--test-passphrase', '--key-file=-', header], {
      input: passphrase,
    });
    return r.code === 0;
  } finally {
    rmSync(header, { force: true });
  }
}
