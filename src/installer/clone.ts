/**
 * vmstub clone: a copy-on-write copy of a stopped instance that becomes a machine of its own. The
 * source's disk is frozen as a read-only layer under two fresh qcow2 overlays, one for the source (it
 * keeps working, its later writes its own) and one for the clone. The clone's first boot runs the
 * stub's identity plan (host name, machine-id, random seed, SSH host keys made anew) before the
 * installed system ever starts, then the handoff; create's own follow-up records the new host keys and
 * verifies SSH. An encrypted root's container is given the clone's passphrase in place of the
 * source's (a key slot of its own; the volume key, and so the encrypted data, stay shared).
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { conflictError, usageError, VmstubError } from '../util/errors.js';
import { requireTool, run } from '../util/exec.js';
import { defaultHostname, validateName, type VmDefinition } from '../vm/definition.js';
import { newDefinition } from '../vm/definition-builder.js';
import { isRunning } from '../vm/lifecycle.js';
import { createOverlay } from '../vm/allocate.js';
import { listSnapshots } from '../vm/snapshots.js';
import {
  createInstance,
  instancePaths,
  instancesRoot,
  loadDefinition,
  runningSupervisor,
  removeInstance,
  type InstancePaths,
} from '../vm/store.js';
import { onCleanup } from '../util/cleanup.js';
import { hintFwCfg, installAndVerify, type CreateOptions, type CreateResult } from './create.js';
import { installStatus } from './install-state.js';
import {
  newPassphrase,
  passphraseFwCfg,
  passphraseOpens,
  writePassphrase,
  type AskPassphrase,
} from './luks-key.js';
import { readRecordedSpec, type InstallSpec } from './spec.js';

/** The files of a disk's backing chain, the disk first (qemu-img's view, read without a lock). */
export async function backingChain(disk: string): Promise<string[]> {
  const r = await run(requireTool('qemu-img', 'qemu-utils'), [
    'info',
    '-U',
    '--backing-chain',
    '--output=json',
    disk,
  ]);
  if (r.code !== 0) throw new VmstubError(`qemu-img cannot read ${disk}: ${r.stderr.trim()}`);
  const info = JSON.parse(r.stdout.toString('utf8')) as { filename: string }[] | { filename: string };
  return (Array.isArray(info) ? info : [info]).map((i) => i.filename);
}

/** The instances whose disks are layered on a file in this instance's directory (its clones, theirs). */
export async function dependentsOf(paths: InstancePaths, root = instancesRoot()): Promise<string[]> {
  const out: string[] = [];
  if (!existsSync(root)) return out;
  for (const other of readdirSync(root)) {
    if (join(root, other) === paths.dir) continue;
    let def: VmDefinition;
    try {
      def = loadDefinition(other);
    } catch {
      continue;
    }
    if (def.data?.format !== 'qcow2' || !existsSync(def.data.path)) continue;
    const chain = await backingChain(def.data.path).catch(() => []);
    if (chain.slice(1).some((f) => f.startsWith(`${paths.dir}/`))) out.push(other);
  }
  return out.sort();
}

/**
 * Freezes the source's disk as a read-only layer and gives the source a fresh overlay on it; returns
 * the layer, for the clone's overlay. A raw disk.img is its own layer; an overlay (an earlier clone's)
 * is renamed to the next layer-N.qcow2, so each clone sees the source as it was when it was made.
 */
async function freeze(
  paths: InstancePaths,
  def: VmDefinition,
): Promise<{ layer: string; format: 'raw' | 'qcow2' }> {
  const disk = def.data!;
  let layer = disk.path;
  if (disk.path === paths.overlayDisk) {
    let n = 1;
    while (existsSync(join(paths.dir, `layer-${n}.qcow2`))) n++;
    layer = join(paths.dir, `layer-${n}.qcow2`);
    renameSync(disk.path, layer);
  }
  chmodSync(layer, 0o400);
  const format = disk.format === 'qcow2' ? 'qcow2' : 'raw';
  try {
    await createOverlay(paths.overlayDisk, layer, format);
  } catch (e) {
    // The source stays as it was: its disk back under its own name, writable.
    chmodSync(layer, 0o600);
    if (layer !== disk.path) renameSync(layer, disk.path);
    throw e;
  }
  const updated: VmDefinition = { ...def, data: { path: paths.overlayDisk, format: 'qcow2' } };
  writeFileSync(paths.definition, JSON.stringify(updated, null, 2) + '\n', { mode: 0o600 });
  return { layer, format };
}

/**
 * An encrypted source's passphrase and the clone's new one, refused before any work: the source's from
 * the host (unlock: host) or typed, checked against its disk's header; the clone's from --key-file or
 * typed twice, and not the source's (a clone gets a key of its own).
 */
async function clonePassphrases(
  source: string,
  def: VmDefinition,
  o: { keyFile?: string; askPassphrase?: AskPassphrase },
): Promise<{ sourcePassphrase: string; passphrase: string }> {
  const from = instancePaths(source);
  let sourcePassphrase: string;
  if (existsSync(from.luksPassphrase)) sourcePassphrase = readFileSync(from.luksPassphrase, 'utf8');
  else if (o.askPassphrase) sourcePassphrase = await o.askPassphrase(`Passphrase of ${source}'s root: `);
  else
    throw usageError(
      `${source}'s passphrase is kept by no one and there is no terminal to type it at; vmstub key keep ${source} first`,
    );
  if (!(await passphraseOpens(def.data!, sourcePassphrase, from.dir)))
    throw usageError(`that passphrase does not open ${source}'s root; nothing was made`);
  const passphrase = await newPassphrase(
    o.keyFile,
    o.askPassphrase,
    `the clone of ${source}'s encrypted root`,
  );
  if (passphrase === sourcePassphrase)
    throw usageError(`the clone's passphrase is ${source}'s; give it one of its own (nothing was made)`);
  return { sourcePassphrase, passphrase };
}

export async function cloneInstance(
  source: string,
  o: Pick<CreateOptions, 'name' | 'sshTimeoutSec' | 'note' | 'onEvent' | 'tick' | 'askPassphrase'> & {
    keyFile?: string;
  },
): Promise<CreateResult & { source: string }> {
  const started = Date.now();
  validateName(o.name);
  const from = instancePaths(source);
  if (!existsSync(from.definition)) throw conflictError(`no instance named ${source}`);
  const def = loadDefinition(source);
  const status = installStatus(from);
  if (!status || !existsSync(from.installSpec) || !def.data)
    throw conflictError(`${source} was not made by vmstub create; only an installed instance can be cloned`);
  if (status.phase !== 'installed')
    throw conflictError(`${source}'s install did not finish; vmstub resume ${source} first`);
  if (isRunning(from)) throw conflictError(`${source} is running; stop it first (vmstub stop ${source})`);
  if (o.keyFile && !def.encryptedRoot) throw usageError(`--key-file: ${source}'s root is not encrypted`);
  if (existsSync(instancePaths(o.name).definition)) throw conflictError(`${o.name} exists`);
  if (!existsSync(def.data.path)) throw conflictError(`${source}'s data disk ${def.data.path} is gone`);
  // The clone freezes the source's disk into a shared read-only layer, where its snapshots could no longer be restored.
  const snapshots = await listSnapshots(def.data);
  if (snapshots.length)
    throw conflictError(
      `${source} has snapshots (${snapshots.map((s) => s.tag).join(', ')}), which a clone would put out of reach; vmstub snapshot rm them first`,
    );

  const keys = def.encryptedRoot ? await clonePassphrases(source, def, o) : undefined;

  const sourceSpec = readRecordedSpec(from.installSpec);
  const spec: InstallSpec = {
    ...sourceSpec,
    hostname: defaultHostname(o.name),
    renewIdentity: true,
    resume: false,
    rootTarball: false,
    wipe: false,
  };
  const dropped = [
    ...(def.hostfwds.length ? ['its port forwards'] : []),
    ...(def.shares.length ? ['its shares'] : []),
  ];
  if (dropped.length)
    o.note(`${o.name} does not take ${source}'s ${dropped.join(' or ')} (two VMs would clash)`);
  const cloneDef = newDefinition(o.name, {
    system: def.system,
    memoryMiB: def.memoryMiB,
    cpus: def.cpus,
    accel: def.accel,
    sshUser: def.sshUser,
    stopTimeoutSec: def.stopTimeoutSec,
  });
  const paths = createInstance(cloneDef);
  const unmake = onCleanup(`the half-made clone ${o.name}`, () => {
    if (!runningSupervisor(paths)) removeInstance(paths);
  });
  try {
    const { layer, format } = await freeze(from, def);
    await createOverlay(paths.overlayDisk, layer, format);
    cloneDef.data = { path: paths.overlayDisk, format: 'qcow2' };
    if (existsSync(from.sshKey)) {
      copyFileSync(from.sshKey, paths.sshKey);
      copyFileSync(`${from.sshKey}.pub`, `${paths.sshKey}.pub`);
      chmodSync(paths.sshKey, 0o600);
    }
    const sshKeys = existsSync(from.authorizedKeys)
      ? readFileSync(from.authorizedKeys, 'utf8').split('\n').filter(Boolean)
      : spec.root.sshKeys;
    cloneDef.fwCfg = hintFwCfg(paths, sshKeys, spec.timezone);
    if (keys) {
      writePassphrase(paths.luksPassphrase, keys.passphrase);
      writePassphrase(paths.luksSourcePassphrase, keys.sourcePassphrase);
      cloneDef.encryptedRoot = { ...def.encryptedRoot! };
      if (def.encryptedRoot!.unlock === 'host') cloneDef.fwCfg.push(passphraseFwCfg(paths.luksPassphrase));
      o.note(
        `${o.name}'s encrypted root takes its own passphrase, not ${source}'s; the two share the volume key under it (the data is one copy)`,
      );
    }
    writeFileSync(paths.definition, JSON.stringify(cloneDef, null, 2) + '\n', { mode: 0o600 });
    writeFileSync(paths.installSpec, JSON.stringify(spec, null, 2) + '\n', { mode: 0o600 });
  } catch (e) {
    await unmake.undo();
    throw e;
  }
  const result = await installAndVerify(o.name, paths, o as CreateOptions, {
    phases: {},
    started,
    attempt: 1,
    unmake,
  });
  return { ...result, source };
}
