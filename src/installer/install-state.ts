import { existsSync, readFileSync } from 'node:fs';
import { decodeEvents } from '../events/protocol.js';
import { isRunning } from '../vm/lifecycle.js';
import { writeFileAtomic, type InstancePaths } from '../vm/store.js';

/**
 * Where an instance made by `vmstub create` stands, kept in install.json and refined from what the
 * installer itself reported (events.ndjson), so that it is right even when the create that started the
 * install was killed.
 *
 * - installing: the install runs (or ran when last looked at, and the VM still runs)
 * - failed: the installer reported a failure, at `step`
 * - interrupted: the install stopped without a word of its own (create interrupted, QEMU killed, ...)
 * - installed: the installer finished and handed over to the new system
 */
export type InstallPhase = 'installing' | 'failed' | 'interrupted' | 'installed';

export interface InstallStatus {
  phase: InstallPhase;
  /** The step running, or the step that failed. */
  step?: string;
  reason?: string;
  log: string;
  /** How many times the install was started (1 for create, +1 for each resume that starts over). */
  attempt: number;
  updatedAt: string;
}

type InstallerEvent =
  | { type: 'step-start'; step: string }
  | { type: 'install-failed'; step: string; reason: string }
  | { type: 'install-done' }
  | { type: 'handoff'; status: string; reason?: string }
  | { type: string };

/**
 * What the stored status and the installer's events of this boot say together. Pure: the events file's
 * text and whether the VM runs are its inputs.
 */
export function deriveInstallStatus(
  stored: InstallStatus,
  eventsText: string,
  running: boolean,
): InstallStatus {
  if (stored.phase !== 'installing') return stored;
  let step = stored.step;
  for (const e of decodeEvents<InstallerEvent>(eventsText).events) {
    if (e.type === 'step-start') step = (e as { step: string }).step;
    else if (e.type === 'install-failed') {
      const f = e as { step: string; reason: string };
      return { ...stored, phase: 'failed', step: f.step, reason: f.reason };
    } else if (e.type === 'install-done') return { ...stored, phase: 'installed', step: undefined };
  }
  if (running) return { ...stored, step };
  return { ...stored, phase: 'interrupted', step, reason: 'the VM stopped during the install' };
}

export function readStoredInstallStatus(paths: InstancePaths): InstallStatus | undefined {
  const file = paths.installStatus;
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as InstallStatus;
  } catch {
    return undefined;
  }
}

export function writeInstallStatus(
  paths: InstancePaths,
  status: Omit<InstallStatus, 'updatedAt'>,
): InstallStatus {
  const full = { ...status, updatedAt: new Date().toISOString() };
  writeFileAtomic(paths.installStatus, JSON.stringify(full, null, 2) + '\n');
  return full;
}

/** The instance's install status now (undefined for instances `vmstub run` made); a change is written back. */
export function installStatus(paths: InstancePaths): InstallStatus | undefined {
  const stored = readStoredInstallStatus(paths);
  if (!stored) return undefined;
  const events = existsSync(paths.events) ? readFileSync(paths.events, 'utf8') : '';
  const now = deriveInstallStatus(stored, events, isRunning(paths));
  if (now.phase !== stored.phase) return writeInstallStatus(paths, now);
  return now;
}

/** One phrase for list, show and messages. */
export function describeInstallStatus(s: InstallStatus): string {
  switch (s.phase) {
    case 'installing':
      return `installing${s.step ? ` (${s.step})` : ''}`;
    case 'failed':
      return `install failed at ${s.step ?? 'start'}`;
    case 'interrupted':
      return `install interrupted${s.step ? ` at ${s.step}` : ''}`;
    case 'installed':
      return 'installed';
  }
}
