import type { VmDefinition } from '../../src/vm/definition.js';
import { newDefinition } from '../../src/vm/definition-builder.js';

/** A small instance definition for tests that write instances without starting them. */
export const testDefinition = (name: string, extra: Partial<VmDefinition> = {}): VmDefinition =>
  newDefinition(
    name,
    { system: '/x.squashfs', memoryMiB: 512, cpus: 1, accel: 'tcg', stopTimeoutSec: 10, ...extra },
    new Date('2026-01-01T00:00:00Z'),
  );
