/**
 * The events the stub sends the host, one JSON object per line on the virtio-serial port
 * org.vmstub.events (which the host writes to events.ndjson in the instance directory).
 */
export type StubEvent =
  | {
      type: 'handoff';
      status: 'kexec';
      kernel: string;
      initrds: string[];
      cmdline: string;
      source: string;
      device: string;
    }
  | { type: 'handoff'; status: 'nothing-installed' | 'skipped'; reason: string }
  | { type: 'handoff'; status: 'failed'; reason: string };

export type TimedEvent<E> = E & { time: string };

export function encodeEvent<E extends object>(event: E, now = new Date()): string {
  return JSON.stringify({ ...event, time: now.toISOString() }) + '\n';
}

/** Parses an events file's lines; a torn last line (still being written) is left for the next read. */
export function decodeEvents<E>(text: string): { events: TimedEvent<E>[]; rest: string } {
  const lines = text.split('\n');
  const rest = lines.pop() ?? '';
  const events: TimedEvent<E>[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    try {
      events.push(JSON.parse(line) as TimedEvent<E>);
    } catch {
      // not an event (a guest may print anything on its own): ignore it
    }
  }
  return { events, rest };
}
