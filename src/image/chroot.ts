/**
 * A root directory made ready for running its own tools, as vmdebootstrap's customise scripts had it:
 * proc, sys, dev and dev/pts mounted, the host's name servers, services kept from starting
 * (policy-rc.d), apt quiet but logging each step. Everything is undone afterwards, also when the work
 * fails or vmstub is interrupted, and the root is left as it was.
 */
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { onCleanup, type Registration } from '../util/cleanup.js';
import { run, which } from '../util/exec.js';
import { unmountUnder } from '../util/mounts.js';
import { VmstubError } from '../util/errors.js';

/** The environment commands in the root run with. */
export const CHROOT_ENV: Record<string, string> = {
  DEBIAN_FRONTEND: 'noninteractive',
  DEBCONF_NONINTERACTIVE_SEEN: 'true',
  LC_ALL: 'C.UTF-8',
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
};

/** apt without progress bars or colour, each download and unpack on a line of its own. */
export const QUIET_APT = 'Dpkg::Progress-Fancy "0";\nAPT::Color "0";\nquiet "1";\nAcquire::Retries "5";\n';

const POLICY_RC_D = '#!/bin/sh\n# vmstub image build: no services start while the image is built\nexit 101\n';

const MOUNTS = [
  ['proc', 'proc', 'proc'],
  ['sys', 'sysfs', 'sysfs'],
  ['dev', 'devtmpfs', 'devtmpfs'],
  ['dev/pts', 'devpts', 'devpts'],
] as const;

/** Files put into the root for the session, each with how it was before. */
const SESSION_FILES = {
  policy: 'usr/sbin/policy-rc.d',
  apt: 'etc/apt/apt.conf.d/00vmstub-build',
  resolv: 'etc/resolv.conf',
} as const;

/** Sets a file aside (a symlink stays a symlink) so that it can be put back. */
function setAside(path: string): () => void {
  let kept: { link: string } | { moved: string } | undefined;
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) kept = { link: readlinkSync(path) };
    else {
      kept = { moved: `${path}.vmstub-build` };
      renameSync(path, kept.moved);
    }
  } catch {
    kept = undefined;
  }
  if (kept && 'link' in kept) rmSync(path, { force: true });
  return () => {
    rmSync(path, { force: true });
    if (!kept) return;
    if ('link' in kept) symlinkSync(kept.link, path);
    else renameSync(kept.moved, path);
  };
}

export interface ChrootSession {
  readonly root: string;
  /** Undoes the session: the mounts, and the root's own files put back. */
  end(): Promise<void>;
}

/** Mounts and files for work in root; `end` (or an interruption) undoes them all, newest first. */
export async function openChroot(root: string, o: { network: boolean }): Promise<ChrootSession> {
  const undos: Registration[] = [onCleanup(`mounts under ${root}`, () => unmountUnder(root).then(() => {}))];
  const end = async () => {
    while (undos.length) await undos.pop()!.undo();
  };
  try {
    for (const [dir, type, source] of MOUNTS) {
      const at = join(root, dir);
      mkdirSync(at, { recursive: true });
      const r = await run(which('mount') ?? 'mount', ['-t', type, source, at]);
      if (r.code !== 0) throw new VmstubError(`cannot mount ${type} on ${at}: ${r.stderr.trim()}`);
      undos.push(
        onCleanup(`unmount ${at}`, () => run(which('umount') ?? 'umount', ['-l', at]).then(() => {})),
      );
    }
    const put = (rel: string, fill: (path: string) => void) => {
      const path = join(root, rel);
      mkdirSync(dirname(path), { recursive: true });
      undos.push(onCleanup(`restore ${path}`, setAside(path)));
      fill(path);
    };
    put(SESSION_FILES.policy, (p) => writeFileSync(p, POLICY_RC_D, { mode: 0o755 }));
    put(SESSION_FILES.apt, (p) => writeFileSync(p, QUIET_APT, { mode: 0o644 }));
    if (o.network && existsSync('/etc/resolv.conf'))
      put(SESSION_FILES.resolv, (p) => copyFileSync('/etc/resolv.conf', p));
  } catch (e) {
    await end();
    throw e;
  }
  return { root, end };
}
