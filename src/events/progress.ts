import type { InstallEvent } from './protocol.js';

const clock = (ms: number): string => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
};

/**
 * Shows an install's progress on the host: on a terminal one line, rewritten in place (step, phase,
 * packages, elapsed time); elsewhere one line per step and phase.
 */
export class InstallProgress {
  private step = '';
  private index = 0;
  private total = 0;
  private detail = '';
  private readonly started = Date.now();
  private lastWidth = 0;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly now: () => number = Date.now,
  ) {}

  private status(): string {
    return `[${this.index}/${this.total}] ${this.step}${this.detail ? `: ${this.detail}` : ''} (${clock(this.now() - this.started)})`;
  }

  private show(line: string, permanent: boolean): void {
    if (this.out.isTTY) {
      const padded = line.padEnd(this.lastWidth);
      this.out.write(`\r${padded}${permanent ? '\n' : ''}`);
      this.lastWidth = permanent ? 0 : line.length;
    } else if (permanent) {
      this.out.write(`${line}\n`);
    }
  }

  handle(e: InstallEvent): void {
    switch (e.type) {
      case 'step-start':
        this.step = e.title;
        this.index = e.index;
        this.total = e.total;
        this.detail = '';
        this.show(this.status(), !this.out.isTTY);
        return;
      case 'progress':
        this.detail = e.done === undefined ? e.phase : `${e.phase} ${e.done}${e.total ? `/${e.total}` : ''}`;
        this.show(this.status(), !this.out.isTTY && e.done === undefined);
        return;
      case 'step-end':
        this.detail = `done in ${e.seconds} s`;
        this.show(this.status(), true);
        return;
      case 'install-done':
        this.show(`installed in ${clock(e.seconds * 1000)}`, true);
        return;
      case 'install-failed':
        this.show(`install failed at step ${e.step}: ${e.reason}`, true);
        return;
      default:
        return;
    }
  }

  /** Redraws the elapsed time while nothing else happens. */
  tick(): void {
    if (this.out.isTTY && this.total) this.show(this.status(), false);
  }
}
