import { chmodSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { oneLine } from '../util/errors.js';
import { BoundedLog, CONSOLE_LOG_MAX_BYTES } from './bounded-log.js';
import type { LaunchInfo, SupervisorReport } from './launch.js';
import { QmpClient } from './qmp.js';
import {
  instancePaths,
  loadDefinition,
  processStartTicks,
  readState,
  releaseInstanceLock,
  removeInstance,
  removeRunFiles,
  takeOverInstanceLock,
  writeState,
  VIRTIOFS_SOCKET,
  type InstancePaths,
} from './store.js';

/** Serves the console: QEMU's output to the log and every attached client; any client's input to QEMU. */
class ConsoleHub {
  private readonly clients = new Set<Socket>();
  private server: Server | undefined;

  constructor(
    private readonly log: BoundedLog,
    private readonly socketPath: string,
    private readonly toQemu: NodeJS.WritableStream,
  ) {
    toQemu.on('error', () => {});
  }

  /** Relays QEMU's console output; resolves when QEMU closes it (QEMU has exited). */
  relay(fromQemu: NodeJS.ReadableStream): Promise<void> {
    return new Promise((resolve) => {
      fromQemu.on('data', (d: Buffer) => {
        this.log.write(d);
        for (const c of this.clients) c.write(d);
      });
      fromQemu.on('end', resolve);
      fromQemu.on('error', () => resolve());
    });
  }

  async listen(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    this.server = createServer((client) => {
      this.clients.add(client);
      client.on('data', (d: Buffer) => this.toQemu.write(d));
      client.on('close', () => this.clients.delete(client));
      client.on('error', () => this.clients.delete(client));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.socketPath, () => resolve());
    });
    chmodSync(this.socketPath, 0o600);
  }

  close(): void {
    for (const c of this.clients) c.end();
    this.server?.close();
    rmSync(this.socketPath, { force: true });
  }
}

/** Connects to the supervisor's private QMP monitor as soon as QEMU offers it, unless QEMU is gone first. */
async function connectMonitor(socket: string, gone: () => boolean): Promise<QmpClient | undefined> {
  for (let i = 0; ; i++) {
    if (gone()) return undefined;
    if (existsSync(socket)) {
      try {
        return await QmpClient.connect(socket, 10_000);
      } catch {
        // QEMU is still initialising or already going away; look again
      }
    }
    await new Promise((r) => setTimeout(r, i < 200 ? 5 : 50));
  }
}

const alive = (pid: number, start: string | undefined): boolean =>
  start !== undefined && processStartTicks(pid) === start;

/** Whether the promise settles within the time; the timer never outlives the answer. */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}

/**
 * Asks the guest to power off (ACPI), then tells QEMU to quit; 'killed' means neither worked and the
 * caller must kill QEMU. With force, QEMU is told to quit at once.
 */
export async function gracefulStop(
  qmp: QmpClient,
  exit: Promise<unknown>,
  timeoutMs: number,
  force = false,
): Promise<'powered-off' | 'quit' | 'killed'> {
  if (!force) {
    try {
      await qmp.execute('system_powerdown');
    } catch {
      // QEMU may be going away already
    }
    if (await settlesWithin(exit, timeoutMs)) return 'powered-off';
  }
  try {
    await qmp.execute('quit');
  } catch {
    // the connection closes as QEMU quits
  }
  if (await settlesWithin(exit, 5000)) return 'quit';
  return 'killed';
}

function cleanup(paths: InstancePaths, daemonPids: number[]): void {
  for (const pid of daemonPids) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  removeRunFiles(paths);
  rmSync(paths.supervisorSocket, { force: true });
  for (const f of readdirSync(paths.dir))
    if (VIRTIOFS_SOCKET.test(f)) rmSync(join(paths.dir, f), { force: true });
  releaseInstanceLock(paths);
}

/**
 * Looks after one running QEMU that its starter launched: relays the console (fd 0 is QEMU's stdout,
 * fd 4 its stdin) into a bounded log and a socket, takes the instance lock over once QEMU answers,
 * records how QEMU ended, and cleans up. SIGTERM/SIGINT/SIGHUP power the guest off, then quit it.
 */
export async function supervise(
  name: string,
  launch: LaunchInfo,
  report: (r: SupervisorReport) => void,
): Promise<void> {
  const paths = instancePaths(name);
  const def = loadDefinition(name);
  const qemuStart = processStartTicks(launch.qemuPid);
  const log = new BoundedLog(paths.consoleLog, CONSOLE_LOG_MAX_BYTES);
  log.write(`\n--- vmstub: ${name} starting at ${new Date().toISOString()} ---\n`);
  const hub = new ConsoleHub(log, paths.console, new Socket({ fd: 4, readable: false, writable: true }));
  let qemuClosedConsole = false;
  const consoleEnded = hub.relay(process.stdin).then(() => {
    qemuClosedConsole = true;
  });

  let monitor: QmpClient | undefined;
  try {
    await hub.listen();
    monitor = await connectMonitor(
      paths.supervisorSocket,
      () => qemuClosedConsole || !alive(launch.qemuPid, qemuStart),
    );
  } catch (e) {
    report({ type: 'error', message: `supervisor: ${oneLine(e)}` });
    hub.close();
    log.close();
    return;
  }
  if (!monitor) {
    // QEMU ended before it was ready: the starter reads its log, cleans up, and may try again.
    hub.close();
    log.close();
    report({ type: 'qemu-exited' });
    return;
  }
  takeOverInstanceLock(paths, launch.starterPid);
  writeState(paths, {
    ...readState(paths),
    ...launch.state,
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
  });
  report({ type: 'ready' });

  let shutdownReason = '';
  monitor.onEvent((event, data) => {
    if (event === 'SHUTDOWN')
      shutdownReason = String((data as { reason?: string } | undefined)?.reason ?? 'shutdown');
  });
  const monitorClosed = new Promise<void>((resolve) => monitor!.onClose(resolve));
  const qemuGone = (async () => {
    await Promise.all([consoleEnded, monitorClosed]);
    for (let i = 0; i < 200 && alive(launch.qemuPid, qemuStart); i++)
      await new Promise((r) => setTimeout(r, 50));
  })();

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const outcome = await gracefulStop(monitor!, qemuGone, def.stopTimeoutSec * 1000);
    if (outcome === 'killed' && alive(launch.qemuPid, qemuStart)) process.kill(launch.qemuPid, 'SIGKILL');
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void stop());

  await qemuGone;
  monitor.close();
  const reason = shutdownReason || `QEMU exited unexpectedly (see ${paths.qemuLog})`;
  writeState(paths, {
    ...readState(paths),
    supervisorPid: undefined,
    qemuPid: undefined,
    lastExit: { at: new Date().toISOString(), reason, clean: shutdownReason !== '' },
  });
  log.write(`\n--- vmstub: ${name} stopped at ${new Date().toISOString()}: ${reason} ---\n`);
  hub.close();
  log.close();
  cleanup(paths, launch.daemonPids);
  if (def.ephemeral) removeInstance(paths);
}
