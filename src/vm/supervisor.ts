import { chmodSync, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { oneLine } from '../util/errors.js';
import { BoundedLog, CONSOLE_LOG_MAX_BYTES } from './bounded-log.js';
import { spawnQemu, supervisorMonitorArgs, type LaunchInfo, type SupervisorReport } from './launch.js';
import { AutoForwarder } from './auto-forward.js';
import type { VmDefinition } from './definition.js';
import { ARCH_TRAITS, buildQemuArgv, forwardingNetdev, type LaunchPlan } from './qemu-argv.js';
import { qgaExecute } from './qga.js';
import { decodeBootExport, keepDirectBoot, type DirectBoot } from '../boot/boot-export.js';
import { which } from '../util/exec.js';
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
  writeFileAtomic,
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
    private toQemu: NodeJS.WritableStream,
  ) {
    toQemu.on('error', () => {});
  }

  /** Console input goes to another QEMU from now on (the direct boot's). */
  retarget(toQemu: NodeJS.WritableStream): void {
    toQemu.on('error', () => {});
    this.toQemu = toQemu;
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

/** Connects to a QMP monitor of QEMU's as soon as QEMU offers it, unless `gone` says to give up first. */
export async function connectMonitor(socket: string, gone: () => boolean): Promise<QmpClient | undefined> {
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
  /** The guest agent's socket, on machines without a power button: asked to power off instead. */
  guestAgent?: string,
): Promise<'powered-off' | 'quit' | 'killed'> {
  if (!force) {
    try {
      if (guestAgent)
        // The agent does not answer a shutdown it carries out; a guest without one quits after the timeout.
        void qgaExecute(guestAgent, 'guest-shutdown', { mode: 'powerdown' }, 5000).catch(() => {});
      else await qmp.execute('system_powerdown');
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
  let qemuPid = launch.qemuPid;
  let qemuStart = processStartTicks(qemuPid);
  const log = new BoundedLog(paths.consoleLog, CONSOLE_LOG_MAX_BYTES);
  log.write(`\n--- vmstub: ${name} starting at ${new Date().toISOString()} ---\n`);
  const hub = new ConsoleHub(log, paths.console, new Socket({ fd: 4, readable: false, writable: true }));
  let qemuClosedConsole = false;
  const follow = (stdout: NodeJS.ReadableStream) => {
    qemuClosedConsole = false;
    return hub.relay(stdout).then(() => {
      qemuClosedConsole = true;
    });
  };
  let consoleEnded = follow(process.stdin);

  let monitor: QmpClient | undefined;
  try {
    await hub.listen();
    monitor = await connectMonitor(
      paths.supervisorSocket,
      () => qemuClosedConsole || !alive(qemuPid, qemuStart),
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
  writeFileAtomic(paths.supervisorPidFile, `${process.pid}\n`);
  writeState(paths, {
    ...readState(paths),
    ...launch.state,
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
  });
  report({ type: 'ready' });
  const autoForward = startAutoForward(paths, def, (line) => log.write(`\n--- vmstub: ${line} ---\n`));

  let stopping = false;
  let qemuGone: Promise<void> = Promise.resolve();
  let shutdownReason = '';
  const watch = (m: QmpClient) => {
    shutdownReason = '';
    m.onEvent((event, data) => {
      if (event === 'SHUTDOWN')
        shutdownReason = String((data as { reason?: string } | undefined)?.reason ?? 'shutdown');
    });
    const monitorClosed = new Promise<void>((resolve) => m.onClose(resolve));
    const pid = qemuPid;
    const started = qemuStart;
    qemuGone = (async () => {
      await Promise.all([consoleEnded, monitorClosed]);
      for (let i = 0; i < 200 && alive(pid, started); i++) await new Promise((r) => setTimeout(r, 50));
    })();
  };
  watch(monitor);

  /** Pending while the handoff's relaunch starts the next QEMU: a stop then is for that one. */
  let relaunching: Promise<void> = Promise.resolve();
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await relaunching;
    const outcome = await gracefulStop(
      monitor!,
      qemuGone,
      def.stopTimeoutSec * 1000,
      false,
      ARCH_TRAITS[launch.plan.arch].powerButton ? undefined : paths.qga,
    );
    if (outcome === 'killed' && alive(qemuPid, qemuStart)) process.kill(qemuPid, 'SIGKILL');
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void stop());

  let reason: string;
  for (;;) {
    await qemuGone;
    monitor.close();
    // A machine whose QEMU exits at the guest's power-off without a SHUTDOWN event: that is what it was.
    if (!shutdownReason && !ARCH_TRAITS[launch.plan.arch].shutdownEvent) shutdownReason = 'guest-shutdown';
    reason = shutdownReason || `QEMU exited unexpectedly (see ${paths.qemuLog})`;
    // The stub powered off after sending the installed kernel: start QEMU again with it, unless
    // the power-off was a stop's (vmstub stop asked, or a signal came).
    const stopAsked = stopping || existsSync(paths.stopRequested);
    const boot = !stopAsked && shutdownReason === 'guest-shutdown' ? takeDirectBoot(paths, log) : undefined;
    if (!boot) break;
    let relaunched = () => {};
    relaunching = new Promise((resolve) => (relaunched = resolve));
    const next = await relaunch(paths, { ...launch.plan, directBoot: boot }, hub, log);
    if (!next) {
      relaunched();
      reason = `QEMU did not start with the installed kernel (see ${paths.qemuLog})`;
      break;
    }
    ({ qemuPid, qemuStart, monitor } = next);
    autoForward?.forwarder.reset();
    consoleEnded = follow(next.stdout);
    writeState(paths, { ...readState(paths), qemuPid, qemuCommand: next.command });
    watch(monitor);
    relaunched();
  }
  await autoForward?.stop();
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

/** Guest ports vmstub's own system listens on, which need no forward of their own: sshd, LLMNR. */
const NOT_AUTO_FORWARDED = [22, 5355];

/** The --auto-forward loop: a look at the guest every few seconds while QEMU runs. */
function startAutoForward(
  paths: InstancePaths,
  def: VmDefinition,
  log: (line: string) => void,
): { forwarder: AutoForwarder; stop: () => Promise<void> } | undefined {
  const netdev = forwardingNetdev(def);
  if (!def.autoForward || !netdev) return undefined;
  const forwarder = new AutoForwarder({
    qga: paths.qga,
    qmp: paths.qmp,
    netdev,
    skip: new Set(NOT_AUTO_FORWARDED),
    recorded: () => {
      try {
        return loadDefinition(def.name).hostfwds;
      } catch {
        return def.hostfwds; // the instance being removed under it (run --rm): what it started with
      }
    },
    stateFile: paths.autoForwards,
    log,
  });
  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (running) {
      await forwarder.tick();
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, AUTO_FORWARD_INTERVAL_MS).unref();
      });
    }
  })();
  // Stopped, it finishes the look it is taking (QEMU is gone: its sockets fail at once), then no more.
  return {
    forwarder,
    stop: () => {
      running = false;
      wake?.();
      return loop;
    },
  };
}

const AUTO_FORWARD_INTERVAL_MS = 3000;

/** What the stub sent over the boot-export port, checked and kept; undefined (said on the console) when nothing usable came. */
function takeDirectBoot(paths: InstancePaths, log: BoundedLog): DirectBoot | undefined {
  let data: Buffer;
  try {
    data = readFileSync(paths.bootExport);
  } catch {
    return undefined;
  }
  try {
    const received = decodeBootExport(data);
    if (!received) return undefined;
    const boot = keepDirectBoot(paths.directBoot, received);
    log.write(
      `\n--- vmstub: booting ${received.header.kernel.path} directly${received.header.unchanged ? ' (the copy the host had)' : ''}, with: ${boot.cmdline} ---\n`,
    );
    return boot;
  } catch (e) {
    log.write(`\n--- vmstub: cannot boot the installed system directly: ${oneLine(e)} ---\n`);
    return undefined;
  } finally {
    rmSync(paths.bootExport, { force: true });
  }
}

/** Starts QEMU again from the plan (the direct boot), with the console and monitor as before. */
async function relaunch(
  paths: InstancePaths,
  plan: LaunchPlan,
  hub: ConsoleHub,
  log: BoundedLog,
): Promise<
  | {
      qemuPid: number;
      qemuStart: string | undefined;
      monitor: QmpClient;
      stdout: NodeJS.ReadableStream;
      command: string[];
    }
  | undefined
> {
  const { binary, args } = buildQemuArgv({
    ...plan,
    extraFwCfg: undefined,
    extraDisks: undefined,
    fwCfgDisk: undefined,
  });
  const argv = [...args, ...supervisorMonitorArgs(paths)];
  const qemuPath = which(binary) ?? binary;
  const qemu = spawnQemu(paths, qemuPath, argv);
  qemu.on('error', () => {});
  hub.retarget(qemu.stdin!);
  const qemuPid = qemu.pid ?? -1;
  const qemuStart = processStartTicks(qemuPid);
  let exited = false;
  qemu.once('exit', () => (exited = true));
  qemu.unref();
  log.write(`--- vmstub: QEMU started again (pid ${qemuPid}) ---\n`);
  const monitor = await connectMonitor(paths.supervisorSocket, () => exited);
  if (!monitor) return undefined;
  return { qemuPid, qemuStart, monitor, stdout: qemu.stdout!, command: [qemuPath, ...argv] };
}
