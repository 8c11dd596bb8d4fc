/** Exit codes, documented in docs/commands.md. */
export const ExitCode = {
  ok: 0,
  /** The operation failed (QEMU, the guest, a tool vmstub ran). */
  failure: 1,
  /** Bad input: usage, an option value, a missing or unusable file, a bad config. */
  usage: 2,
  /** The instance is not in the state the command needs (exists, missing, running, not running). */
  conflict: 3,
  /** Waited for something (SSH, shutdown) and it did not happen in time. */
  timeout: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the user: one line, and the exit code the CLI ends with. */
export class VmstubError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.failure,
  ) {
    super(message);
    this.name = 'VmstubError';
  }
}

export const usageError = (message: string): VmstubError => new VmstubError(message, ExitCode.usage);
export const conflictError = (message: string): VmstubError => new VmstubError(message, ExitCode.conflict);
export const timeoutError = (message: string): VmstubError => new VmstubError(message, ExitCode.timeout);

/** The message of anything thrown, on one line. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s*\n\s*/g, '; ').trim();
}

/** A library's error with the command's name in front; a VmstubError keeps its own message and exit code. */
export function prefixed(what: string, err: unknown): VmstubError {
  if (err instanceof VmstubError) return err;
  return new VmstubError(`${what}: ${err instanceof Error ? err.message : String(err)}`);
}
