import type { VmDefinition } from '../../src/vm/definition.js';

/** A plain instance definition for tests that write instances without starting them. */
export const testDefinition = (name: string, extra: Partial<VmDefinition> = {}): VmDefinition => ({
  version: 1,
  name,
  system: '/x.squashfs',
  memoryMiB: 512,
  cpus: 1,
  shares: [],
  nets: [{ kind: 'user' }],
  hostfwds: [],
  append: [],
  fwCfg: [],
  hvc: false,
  uefi: false,
  accel: 'tcg',
  sshUser: 'root',
  stopTimeoutSec: 10,
  ephemeral: false,
  createdAt: '2026-01-01T00:00:00Z',
  ...extra,
});
