import type { Arch } from '../vm/definition.js';
import type { PlannedDistro } from './types.js';

type Planned = Pick<PlannedDistro, 'id' | 'name' | 'family'> & { arches: Arch[] };

/** The RPM family and Gentoo: in the catalog (and the stub's /root scripts), installable with issue 6. */
const planned: Planned[] = [
  { id: 'centos6', name: 'CentOS 6.10', family: 'el', arches: ['x86_64'] },
  { id: 'centos7', name: 'CentOS 7.9', family: 'el', arches: ['x86_64'] },
  { id: 'centos8stream', name: 'CentOS Stream 8', family: 'el', arches: ['x86_64'] },
  { id: 'centos9stream', name: 'CentOS Stream 9', family: 'el', arches: ['x86_64', 'aarch64'] },
  { id: 'centos10stream', name: 'CentOS Stream 10', family: 'el', arches: ['x86_64', 'aarch64'] },
  { id: 'almalinux9', name: 'AlmaLinux 9', family: 'el', arches: ['x86_64', 'aarch64'] },
  { id: 'rocky8', name: 'Rocky Linux 8', family: 'el', arches: ['x86_64', 'aarch64'] },
  { id: 'miraclelinux8', name: 'MIRACLE LINUX 8', family: 'el', arches: ['x86_64'] },
  { id: 'fedora42', name: 'Fedora 42', family: 'fedora', arches: ['x86_64', 'aarch64'] },
  { id: 'gentoo', name: 'Gentoo (systemd stage3)', family: 'gentoo', arches: ['x86_64', 'aarch64'] },
];

export const PLANNED_DISTROS: PlannedDistro[] = planned.map((d) => ({
  ...d,
  installable: false,
  verified: 'not-yet',
}));
