import { ExitCode, VmstubError } from '../util/errors.js';
import { QmpClient } from './qmp.js';
import { ARCH_TRAITS } from './qemu-argv.js';
import { gracefulStop } from './supervisor.js';
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
  const stopped = waitUntilStopped(paths, (opts.timeoutSec + 15) * 1000);
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(paths.qmp, 5000);
  } catch {
    qmp = undefined;
  }
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
