/** A launch plan for the tests of what a plan becomes (QEMU's argv, libvirt's domain): web1, its stub, TCG. */
import type { VmDefinition } from '../../src/vm/definition.js';
import { newDefinition } from '../../src/vm/definition-builder.js';
import type { LaunchPlan } from '../../src/vm/qemu-argv.js';

const baseDef: VmDefinition = newDefinition(
  'web1',
  { system: '/images/stub.squashfs' },
  new Date('2026-01-01T00:00:00.000Z'),
);

/** web1's plan, with the fields over and the definition's fields def changed. */
export function launchPlan(over: Partial<LaunchPlan> = {}, def: Partial<VmDefinition> = {}): LaunchPlan {
  return {
    def: { ...baseDef, ...def },
    arch: 'x86_64',
    accel: 'tcg',
    kernel: '/cache/kernel',
    initrd: '/cache/initramfs',
    qmpSocket: '/run/web1/qmp.sock',
    qgaSocket: '/run/web1/qga.sock',
    eventsFile: '/run/web1/events.ndjson',
    pidFile: '/run/web1/qemu.pid',
    sshPort: 40022,
    shares: [],
    ...over,
  };
}
