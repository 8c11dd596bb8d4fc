import { writeFileSync } from 'node:fs';
import { ExitCode, VmstubError } from '../util/errors.js';
import { ARCH_TRAITS } from './qemu-argv.js';
import { connectMonitor, gracefulStop } from './supervisor.js';
import { instancePaths, loadDefinition, readState, runningSupervisor, type InstancePaths } from './store.js';

export function isRunning(paths: InstancePaths): boolean {
  return runningSupervisor(paths) !== undefined;
}

/** Resolves true once the instance's supervisor is gone, false on timeout. */
export async function waitUntilStopped(paths: InstancePaths, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(paths)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !isRunning(paths);
}

export type StopOutcome = 'not-running' | 'powered-off' | 'quit' | 'killed';

/** ACPI power-off, then after the timeout a QMP quit, then SIGKILL; --force goes straight to quit. */
export async function stopInstance(
  name: string,
  opts: { force: boolean; timeoutSec: number },
): Promise<StopOutcome> {
  const paths = instancePaths(name);
  loadDefinition(name);
  if (!isRunning(paths)) return 'not-running';
  // The guest's power-off that follows is this stop's: the supervisor starts no installed kernel after it.
  writeFileSync(paths.stopRequested, '', { mode: 0o600 });
  const stopped = waitUntilStopped(paths, (opts.timeoutSec + 15) * 1000);
  // Between the stub's power-off and the next QEMU of the host handoff there is no socket for a moment.
  const deadline = Date.now() + 10_000;
  const qmp = await connectMonitor(paths.qmp, () => Date.now() > deadline || !isRunning(paths));
  if (!qmp && !isRunning(paths)) return 'powered-off';
  let outcome: StopOutcome;
  if (qmp) {
    const arch = readState(paths).arch;
    outcome = await gracefulStop(
      qmp,
      stopped.then((gone) => gone || new Promise(() => {})),
      opts.timeoutSec * 1000,
      opts.force,
      arch && !ARCH_TRAITS[arch].powerButton ? paths.qga : undefined,
    );
    qmp.close();
  } else {
    outcome = 'killed';
  }
  if (outcome === 'killed') {
    const state = readState(paths);
    if (state.qemuPid) {
      try {
        process.kill(state.qemuPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (!(await waitUntilStopped(paths, 10_000))) {
      throw new VmstubError(
        `${name} did not stop; its supervisor is pid ${runningSupervisor(paths)}`,
        ExitCode.failure,
      );
    }
  }
  return outcome;
}
