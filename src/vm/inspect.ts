import { installStatus, type InstallStatus } from '../installer/install-state.js';
import type { VmDefinition } from './definition.js';
import { oneLine } from '../util/errors.js';
import { instancePaths, loadDefinition, readState, runningSupervisor, type InstanceState } from './store.js';

export interface InstanceInfo {
  name: string;
  state: 'running' | 'stopped';
  supervisorPid?: number;
  qemuPid?: number;
  accel?: 'kvm' | 'tcg';
  sshPort?: number;
  startedAt?: string;
  uptimeSec?: number;
  lastExit?: InstanceState['lastExit'];
  shareModes?: InstanceState['shareModes'];
  /** For instances made by vmstub create: where their install stands. */
  install?: InstallStatus;
  definition: VmDefinition;
  paths: {
    dir: string;
    qmp: string;
    console: string;
    consoleLog: string;
    qemuLog: string;
    qga: string;
    events: string;
  };
}

/** What `list` and `show` report: the definition, and runtime facts only while the VM really runs. */
export function describeInstance(name: string, now = Date.now()): InstanceInfo {
  const definition = loadDefinition(name);
  const paths = instancePaths(name);
  const state = readState(paths);
  const running = runningSupervisor(paths) !== undefined;
  const info: InstanceInfo = {
    name,
    state: running ? 'running' : 'stopped',
    definition,
    lastExit: state.lastExit,
    install: installStatus(paths),
    paths: {
      dir: paths.dir,
      qmp: paths.qmp,
      console: paths.console,
      consoleLog: paths.consoleLog,
      qemuLog: paths.qemuLog,
      qga: paths.qga,
      events: paths.events,
    },
  };
  if (running) {
    Object.assign(info, {
      supervisorPid: state.supervisorPid,
      qemuPid: state.qemuPid,
      accel: state.accel,
      sshPort: state.sshPort,
      startedAt: state.startedAt,
      shareModes: state.shareModes,
      uptimeSec: state.startedAt
        ? Math.max(0, Math.round((now - Date.parse(state.startedAt)) / 1000))
        : undefined,
    });
  }
  return info;
}

/** An instance directory that cannot be read: listed as broken, never a reason to fail the whole list. */
export interface BrokenInstance {
  name: string;
  state: 'broken';
  error: string;
  dir: string;
}

export function describeOrBroken(name: string): InstanceInfo | BrokenInstance {
  try {
    return describeInstance(name);
  } catch (e) {
    return { name, state: 'broken', error: oneLine(e), dir: instancePaths(name).dir };
  }
}

/** list's STATE column: running or stopped, or where an unfinished install stands. */
export function stateLabel(info: InstanceInfo): string {
  const phase = info.install?.phase;
  if (!phase || phase === 'installed') return info.state;
  if (phase === 'installing') return info.state === 'running' ? 'installing' : 'interrupted';
  return phase === 'failed' ? `failed (${info.install!.step ?? 'start'})` : phase;
}

export function formatUptime(sec: number | undefined): string {
  if (sec === undefined) return '-';
  if (sec < 60) return `${sec}s`;
  if (sec < 3600) return `${Math.floor(sec / 60)}m${String(sec % 60).padStart(2, '0')}s`;
  if (sec < 86400)
    return `${Math.floor(sec / 3600)}h${String(Math.floor((sec % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(sec / 86400)}d${Math.floor((sec % 86400) / 3600)}h`;
}
