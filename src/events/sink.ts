import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EVENTS_PORT, encodeEvent } from './protocol.js';

/** The character device of a named virtio-serial port, found through sysfs (no udev needed). */
export function findVirtioPort(
  name: string,
  sysClass = '/sys/class/virtio-ports',
  dev = '/dev',
): string | undefined {
  if (!existsSync(sysClass)) return undefined;
  for (const port of readdirSync(sysClass)) {
    try {
      if (readFileSync(join(sysClass, port, 'name'), 'utf8').trim() === name) return join(dev, port);
    } catch {
      // a port without a name
    }
  }
  return undefined;
}

/** Writes events to the host when the VM has the events port; does nothing otherwise. */
export class EventSink {
  private fd: number | undefined;

  constructor(device = findVirtioPort(EVENTS_PORT)) {
    if (device && existsSync(device)) {
      try {
        this.fd = openSync(device, 'w');
      } catch {
        this.fd = undefined;
      }
    }
  }

  emit(event: object): void {
    if (this.fd === undefined) return;
    try {
      writeSync(this.fd, encodeEvent(event));
    } catch {
      // the host side is gone: events are best effort
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
