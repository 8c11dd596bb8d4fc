/**
 * The install as ordered, named steps, computed from the spec alone: printable (vmstub plan), tested as
 * a snapshot, and run by the executor step by step. One planner per family.
 */
import { findDistro } from '../../catalog/index.js';
import type { Distro } from '../../catalog/types.js';
import type { InstallSpec } from '../spec.js';
import { buildDebPlan } from './deb.js';
import { buildGentooPlan } from './gentoo.js';
import { buildRpmPlan } from './rpm.js';
import type { Plan } from './types.js';

type Planners = { [F in Distro['family']]: (spec: InstallSpec, d: Extract<Distro, { family: F }>) => Plan };

const PLANNERS: Planners = {
  deb: buildDebPlan,
  el: buildRpmPlan,
  fedora: buildRpmPlan,
  gentoo: buildGentooPlan,
};

export function buildPlan(spec: InstallSpec): Plan {
  const d = findDistro(spec.distro);
  return (PLANNERS[d.family] as (spec: InstallSpec, d: Distro) => Plan)(spec, d);
}

export { debPackages } from './deb.js';
export { formatPlan } from './format.js';
export * from './types.js';
