/**
 * VMs that start with the host (the original's `vm service`): one systemd template unit,
 * vmstub@.service, whose instance vmstub@NAME runs `vmstub start NAME` and `vmstub stop NAME`.
 *
 * Readiness: Type=forking. `vmstub start` returns only once QEMU runs under its supervisor, and the
 * supervisor, which outlives it, is the main process (its pid in supervisor.pid), so systemd knows the
 * unit is up when start returns and down when the VM is. Type=notify would need the notification to
 * come from the supervisor over a datagram socket Node cannot open, or through systemd-notify, whose
 * messages systemd 252 may not attribute to the unit.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { isAbsolute, join, relative, sep } from 'node:path';
import { isRoot, stateDir } from '../util/paths.js';
import { conflictError } from '../util/errors.js';
import { writeFileAtomic } from './store.js';

export const TEMPLATE = 'vmstub@.service';
export const unitName = (name: string): string => `vmstub@${name}.service`;

export interface ServiceScope {
  /** system: root's units, started at boot; user: the user's own, started with their session (or with lingering). */
  kind: 'system' | 'user';
  unitDir: string;
  target: string;
}

/** Where the units go; VMSTUB_UNIT_DIR puts them elsewhere (a package's staging root, a test). */
export function serviceScope(env: NodeJS.ProcessEnv = process.env, root = isRoot()): ServiceScope {
  const scope: ServiceScope = root
    ? { kind: 'system', unitDir: '/etc/systemd/system', target: 'multi-user.target' }
    : {
        kind: 'user',
        unitDir: join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'systemd', 'user'),
        target: 'default.target',
      };
  return env.VMSTUB_UNIT_DIR ? { ...scope, unitDir: env.VMSTUB_UNIT_DIR } : scope;
}

/**
 * A word for a unit file line (systemd.syntax(7)): % starts a specifier everywhere, and on Exec lines $
 * starts a variable; a word with anything but plain characters goes in double quotes, with \ escapes.
 */
export function unitWord(word: string, exec: boolean): string {
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, exec ? '$$$$' : '$');
  if (/^[A-Za-z0-9_@+=:,./%$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export interface UnitInputs {
  /** The program and script that are vmstub (node and vmstub.cjs). */
  command: string[];
  /** Where instances live, as VMSTUB_HOME (so the unit finds the same ones as the user did). */
  home: string;
  target: string;
}

/** The template unit's text; %i is the instance name. */
export function templateUnit(u: UnitInputs): string {
  const vmstub = u.command.map((w) => unitWord(w, true)).join(' ');
  // The home's own % are escaped; %i is the instance name.
  const instance = join(u.home.replace(/%/g, '%%'), 'instances', '%i');
  return [
    '# Written by vmstub service enable; vmstub service disable NAME takes an instance out.',
    '[Unit]',
    'Description=vmstub VM %i',
    'Wants=network-online.target',
    'After=network-online.target',
    `ConditionPathExists=${join(instance, 'vm.json')}`,
    '',
    '[Service]',
    'Type=forking',
    `Environment=${unitWord(`VMSTUB_HOME=${u.home}`, false)}`,
    `ExecStart=${vmstub} start %i`,
    `ExecStop=${vmstub} stop %i`,
    `PIDFile=${join(instance, 'supervisor.pid')}`,
    // start may build nothing but waits for QEMU; stop waits out the instance's own stop timeout first.
    'TimeoutStartSec=5min',
    'TimeoutStopSec=10min',
    // ExecStop asks the guest; only what is left after it is killed.
    'KillMode=mixed',
    '',
    '[Install]',
    `WantedBy=${u.target}`,
    '',
  ].join('\n');
}

export interface ServiceChange {
  unit: string;
  /** The template was written (it was missing or differed). */
  wroteTemplate: boolean;
  /** The instance is enabled now (the .wants link exists). */
  enabled: boolean;
  changed: boolean;
  templatePath: string;
  linkPath: string;
}

const wantsLink = (scope: ServiceScope, name: string) =>
  join(scope.unitDir, `${scope.target}.wants`, unitName(name));

/** The instances' home a template serves: its VMSTUB_HOME, as templateUnit wrote it. */
export function templateHome(text: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith('Environment='));
  const value = line
    ?.slice('Environment='.length)
    .replace(/^"(.*)"$/, '$1')
    .replace(/\\(.)/g, '$1');
  return value?.startsWith('VMSTUB_HOME=')
    ? value.slice('VMSTUB_HOME='.length).replace(/%%/g, '%')
    : undefined;
}

/** The template there now serves another VMSTUB_HOME: enabling from here would take its instances away. */
function otherHome(templatePath: string): string | undefined {
  if (!existsSync(templatePath)) return undefined;
  const home = templateHome(readFileSync(templatePath, 'utf8'));
  return home !== undefined && home !== stateDir() ? home : undefined;
}

/**
 * Why the vmstub a unit would run may be gone by the time it runs (at the next boot): npx's cache,
 * which `npm cache clean` or a newer npx empties, or a temporary directory. Undefined when neither.
 */
export function transientInstall(script: string, tmp = tmpdir()): string | undefined {
  if (script.split(sep).includes('_npx')) return "it runs from npx's cache, which npm empties when it likes";
  const rel = relative(tmp, script);
  if (rel && !rel.startsWith('..') && !isAbsolute(rel)) return `it runs from ${tmp}, which is cleaned`;
  return undefined;
}

/** Writes the template if it is missing or stale, and links the instance into the target (what systemctl enable does). */
export function enableService(name: string, command: string[], scope = serviceScope()): ServiceChange {
  const templatePath = join(scope.unitDir, TEMPLATE);
  const other = otherHome(templatePath);
  if (other)
    throw conflictError(
      `${templatePath} starts the instances of ${other}, not of ${stateDir()}; one vmstub home per system runs as services`,
    );
  const text = templateUnit({ command, home: stateDir(), target: scope.target });
  mkdirSync(scope.unitDir, { recursive: true });
  const wroteTemplate = !existsSync(templatePath) || readFileSync(templatePath, 'utf8') !== text;
  if (wroteTemplate) writeFileAtomic(templatePath, text, 0o644);
  const linkPath = wantsLink(scope, name);
  mkdirSync(join(scope.unitDir, `${scope.target}.wants`), { recursive: true });
  const target = join('..', TEMPLATE);
  const linked = isLink(linkPath) && readlinkSync(linkPath) === target;
  if (!linked) {
    rmSync(linkPath, { force: true });
    symlinkSync(target, linkPath);
  }
  return {
    unit: unitName(name),
    wroteTemplate,
    enabled: true,
    changed: wroteTemplate || !linked,
    templatePath,
    linkPath,
  };
}

export function disableService(name: string, scope = serviceScope()): ServiceChange {
  const linkPath = wantsLink(scope, name);
  // Another home's instance of the same name is not ours to take out.
  const was = isLink(linkPath) && !otherHome(join(scope.unitDir, TEMPLATE));
  if (was) rmSync(linkPath, { force: true });
  return {
    unit: unitName(name),
    wroteTemplate: false,
    enabled: false,
    changed: was,
    templatePath: join(scope.unitDir, TEMPLATE),
    linkPath,
  };
}

export const isServiceEnabled = (name: string, scope = serviceScope()): boolean =>
  isLink(wantsLink(scope, name));

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Whether systemd runs this system (or this user's session): only then is there a manager to reload. */
export function systemdRuns(scope: ServiceScope, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.VMSTUB_UNIT_DIR) return false; // units written elsewhere are not the manager's to load
  if (scope.kind === 'system') return existsSync('/run/systemd/system');
  return existsSync(join(env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.()}`, 'systemd', 'private'));
}
