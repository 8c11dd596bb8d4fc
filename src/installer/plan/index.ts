/**
 * The install as ordered, named steps, computed from the spec alone: printable (vmstub plan), tested as
 * a snapshot, and run by the executor step by step. One planner per family.
 */
import { findDistro } from '../../catalog/index.js';
import type { Distro } from '../../catalog/types.js';
import type { InstallSpec } from '../spec.js';
import { identityPlanSteps } from './common.js';
import { buildDebPlan, debBootstrapSteps } from './deb.js';
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
  if (spec.renewIdentity) {
    if (spec.target !== 'disk') throw new Error('only a system on the data disk can be cloned');
    return { spec, distro: d, steps: identityPlanSteps(spec) };
  }
  if (spec.rootTarball && !hostBootstrapPlan(spec))
    throw new Error(`${d.name}: a root filesystem bootstrapped on the host is not supported`);
  return (PLANNERS[d.family] as (spec: InstallSpec, d: Distro) => Plan)(spec, d);
}

/**
 * The part of the install the host can do natively (the bootstrap, into a directory it then hands the
 * stub as a tar stream), as its own plan; undefined for the families whose bootstrap runs only in the
 * stub so far (the RPM family, Gentoo).
 */
export function hostBootstrapPlan(spec: InstallSpec): Plan | undefined {
  const d = findDistro(spec.distro);
  if (d.family !== 'deb' || spec.target !== 'disk') return undefined;
  return { spec, distro: d, steps: debBootstrapSteps(spec, d) };
}

export { debPackages } from './deb.js';
export { formatPlan } from './format.js';
export * from './types.js';
