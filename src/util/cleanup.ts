/**
 * One mechanism for undoing what a command started: child process groups, mounts, temporary files,
 * instance states. Whatever acquires such a thing registers how to undo it here and releases the
 * registration once it has undone it itself; on SIGINT, SIGTERM or SIGHUP everything still registered is
 * undone, newest first, and the command exits 128 + the signal's number. What SIGKILL leaves behind is
 * found and undone by the next run (stale stages in src/image/stage-cache.ts, child groups by their
 * watchdog in src/util/exec.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { constants } from 'node:os';

export interface Registration {
  /** Forget the undo without running it (the thing was undone, or handed over, normally). */
  release(): void;
  /** Run the undo now (once) and forget it. */
  undo(): Promise<void>;
}

interface Entry {
  what: string;
  /** Runs the undo once, however often it is asked for. */
  run: () => Promise<void>;
}

const stack: Entry[] = [];
/** Undos under way that their owner started (a failed install unmounting): an interruption waits for them. */
const inFlight = new Set<Promise<void>>();
let interrupted: NodeJS.Signals | undefined;
/**
 * Set while an undo runs. What an undo starts itself (the umount it runs) is its own business: it is not
 * put on the stack, so an interruption never kills the very processes that are undoing things.
 */
const undoing = new AsyncLocalStorage<true>();

export function onCleanup(what: string, fn: () => Promise<void> | void): Registration {
  let done: Promise<void> | undefined;
  const entry: Entry = {
    what,
    run: () => {
      if (!done) {
        const running = Promise.resolve().then(() => undoing.run(true, fn));
        done = running.finally(() => inFlight.delete(running));
        inFlight.add(running);
      }
      return done;
    },
  };
  if (!undoing.getStore()) stack.push(entry);
  const release = () => {
    const i = stack.lastIndexOf(entry);
    if (i >= 0) stack.splice(i, 1);
  };
  return {
    release,
    undo: () => {
      release();
      return entry.run();
    },
  };
}

/** What is registered now, newest last: for tests and for the interrupted message. */
export const pendingCleanups = (): string[] => stack.map((e) => e.what);

/**
 * Undoes everything registered, newest first, and waits for undos their owners already started (an
 * owner that has taken its registration back may still be unmounting when the signal comes); one
 * failing undo does not stop the others.
 */
export async function runCleanups(report: (line: string) => void = () => {}): Promise<void> {
  while (stack.length || inFlight.size) {
    const e = stack.pop();
    if (!e) {
      await Promise.allSettled([...inFlight]);
      continue;
    }
    try {
      await e.run();
    } catch (err) {
      report(`could not undo ${e.what}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Installs the handlers once per process. A command that handles a signal itself (the foreground
 * console stops its VM) adds its own listener; this one then steps aside.
 */
export function installSignalCleanup(write: (line: string) => void): void {
  for (const sig of SIGNALS) {
    const handler = () => {
      if (process.listenerCount(sig) > 1) return;
      if (interrupted) {
        write(`vmstub: still cleaning up after ${interrupted}; SIGKILL ends it at once`);
        return;
      }
      interrupted = sig;
      const what = pendingCleanups();
      write(
        `vmstub: interrupted by ${sig}${what.length ? `; undoing: ${[...what].reverse().join(', ')}` : ''}`,
      );
      void runCleanups((l) => write(`vmstub: ${l}`)).finally(() =>
        process.exit(128 + (constants.signals[sig] ?? 1)),
      );
    };
    process.on(sig, handler);
  }
}
