import { Command } from '@commander-js/extra-typings';
import { formatTable, printJson } from './output.js';
import { jsonOption } from './options.js';
import { conflictError } from '../util/errors.js';
import type { HostFwd, VmDefinition } from '../vm/definition.js';
import { isRunning } from '../vm/lifecycle.js';
import { parseHostFwd } from '../vm/network.js';
import { forwardingNetdev } from '../vm/qemu-argv.js';
import { autoForward, readAutoForwards } from '../vm/auto-forward.js';
import {
  addLiveForward,
  checkNewForward,
  describeForward,
  liveForwards,
  parseHostSide,
  removeLiveForward,
  sameHostSide,
} from '../vm/port-forwards.js';
import { editDefinition, instancePaths, loadDefinition, readState } from '../vm/store.js';

function requireUserNet(name: string, def: VmDefinition): string {
  const netdev = forwardingNetdev(def);
  if (!netdev) throw conflictError(`${name} has no user-mode network, so no port forwards`);
  return netdev;
}

/** The forwards --auto-forward holds in the running instance now. */
const autoForwardsOf = (name: string): HostFwd[] =>
  readAutoForwards(instancePaths(name).autoForwards).map((port) => autoForward(port));

/** Two TCP forwards on the same host port, which cannot both listen whatever their addresses. */
const sameHostPort = (a: HostFwd, b: HostFwd): boolean =>
  a.protocol === 'tcp' && b.protocol === 'tcp' && a.hostPort === b.hostPort;

/** Where the instance stands: running (its QMP socket and SSH port), or not. */
function liveTarget(name: string): { qmp: string; sshPort: number | undefined } | undefined {
  const paths = instancePaths(name);
  return isRunning(paths) ? { qmp: paths.qmp, sshPort: readState(paths).sshPort } : undefined;
}

const add = () =>
  new Command('add')
    .summary('forward host ports to an instance: at once if it runs, and at every later start')
    .description(
      "Forward host ports to an instance's user-mode network. SPEC is [ADDR:]HOSTPORT:GUESTPORT[/udp] as for run --hostfwd; the host side is 127.0.0.1 unless an address is given. On a running VM the forward is added at once through QEMU's monitor (a host port in use is refused and nothing is recorded; one that --auto-forward holds is taken over); it is kept in the instance's definition for its later starts.",
    )
    .argument('<NAME>', 'the instance')
    .argument('<SPEC...>', 'HOSTPORT:GUESTPORT, ADDR:HOSTPORT:GUESTPORT, with /udp for UDP')
    .addOption(jsonOption('the forwards added: [{protocol, hostAddr, hostPort, guestPort}]'))
    .action(async (name, specs, o) => {
      const forwards = specs.map((s) => parseHostFwd(s, 'port add'));
      const added = await editDefinition(name, async (def) => {
        const netdev = requireUserNet(name, def);
        const live = liveTarget(name);
        const checked: HostFwd[] = [];
        for (const f of forwards) {
          checkNewForward([...def.hostfwds, ...checked], f, live?.sshPort);
          checked.push(f);
        }
        // A host port --auto-forward holds is taken over: its forward comes off, the recorded one goes on.
        const auto = live ? autoForwardsOf(name) : [];
        const takenOver: HostFwd[] = [];
        const done: HostFwd[] = [];
        try {
          for (const a of auto.filter((a) => checked.some((f) => sameHostPort(f, a))))
            if (await removeLiveForward(live!.qmp, netdev, a)) takenOver.push(a);
          for (const f of checked) {
            if (live) await addLiveForward(live.qmp, netdev, f);
            done.push(f);
          }
        } catch (e) {
          // All or nothing: the ones already added to the running VM come off again, the auto ones back.
          for (const f of done) await removeLiveForward(live!.qmp, netdev, f).catch(() => false);
          for (const a of takenOver) await addLiveForward(live!.qmp, netdev, a).catch(() => undefined);
          throw e;
        }
        def.hostfwds.push(...done);
        return { forwards: done, live: live !== undefined, takenOver };
      });
      if (o.json) printJson(added.forwards);
      else
        for (const f of added.forwards) {
          const note = !added.live
            ? ' (from its next start)'
            : added.takenOver.some((a) => sameHostPort(f, a))
              ? ' (taken over from --auto-forward)'
              : '';
          process.stdout.write(`${name}: forwarding ${describeForward(f)}${note}\n`);
        }
    });

const rm = () =>
  new Command('rm')
    .summary('remove port forwards from an instance: at once if it runs, and from its definition')
    .argument('<NAME>', 'the instance')
    .argument('<HOSTPORT...>', '[ADDR:]HOSTPORT[/udp]: the host side of a forward')
    .addOption(jsonOption('the forwards removed: [{protocol, hostAddr, hostPort, guestPort}]'))
    .action(async (name, specs, o) => {
      const sides = specs.map((s) => parseHostSide(s));
      const removed = await editDefinition(name, async (def) => {
        const netdev = requireUserNet(name, def);
        const live = liveTarget(name);
        const now = live ? await liveForwards(live.qmp) : [];
        // Every one is checked before any is removed: a refusal changes nothing.
        const found = sides.map((side) => {
          if (side.protocol === 'tcp' && side.hostPort === live?.sshPort)
            throw conflictError(`host port ${side.hostPort} is ${name}'s SSH forward, which vmstub keeps`);
          // A forward added by hand in QEMU's monitor is not recorded, but can still be removed.
          const forward =
            def.hostfwds.find((f) => sameHostSide(f, side)) ?? now.find((f) => sameHostSide(f, side));
          if (!forward)
            throw conflictError(
              `${name} has no forward from ${side.hostAddr}:${side.hostPort}/${side.protocol}`,
            );
          return forward;
        });
        for (const f of found) {
          if (live && now.some((n) => sameHostSide(n, f))) await removeLiveForward(live.qmp, netdev, f);
          const at = def.hostfwds.findIndex((d) => sameHostSide(d, f));
          if (at >= 0) def.hostfwds.splice(at, 1);
        }
        return found;
      });
      if (o.json) printJson(removed);
      else
        for (const f of removed)
          process.stdout.write(`${name}: no longer forwarding ${f.hostAddr}:${f.hostPort}/${f.protocol}\n`);
    });

interface ListedForward extends HostFwd {
  /** vmstub's own forward to the guest's sshd. */
  ssh: boolean;
  /** In the definition, so made at every start. */
  recorded: boolean;
  /** Made by --auto-forward while the guest listens on the port. */
  auto: boolean;
  /** In the running QEMU now; null when the VM is not running. */
  active: boolean | null;
}

const list = () =>
  new Command('list')
    .summary("an instance's port forwards: recorded, and active in the running VM")
    .argument('<NAME>', 'the instance')
    .addOption(jsonOption('[{protocol, hostAddr, hostPort, guestPort, ssh, recorded, auto, active}]'))
    .action(async (name, o) => {
      const def = loadDefinition(name);
      requireUserNet(name, def);
      const live = liveTarget(name);
      const now = live ? await liveForwards(live.qmp) : undefined;
      const rows: ListedForward[] = def.hostfwds.map((f) => ({
        ...f,
        ssh: false,
        recorded: true,
        auto: false,
        active: now ? now.some((n) => sameHostSide(n, f)) : null,
      }));
      const auto = readAutoForwards(instancePaths(name).autoForwards);
      for (const n of now ?? []) {
        if (rows.some((r) => sameHostSide(r, n))) continue;
        const ssh = n.protocol === 'tcp' && n.hostPort === live?.sshPort && n.guestPort === 22;
        const made = n.protocol === 'tcp' && n.hostAddr === '127.0.0.1' && auto.includes(n.guestPort);
        rows.push({ ...n, ssh, recorded: false, auto: made, active: true });
      }
      rows.sort((a, b) => a.hostPort - b.hostPort || a.protocol.localeCompare(b.protocol));
      if (o.json) {
        printJson(rows);
        return;
      }
      const state = (r: ListedForward) =>
        r.ssh
          ? 'ssh (each start)'
          : r.auto
            ? 'auto (while the guest listens)'
            : r.active === null
              ? 'at start'
              : r.active
                ? r.recorded
                  ? 'active'
                  : 'active, not recorded'
                : 'not active';
      process.stdout.write(
        formatTable(
          ['HOST', 'GUEST', 'PROTO', 'STATE'],
          rows.map((r) => [`${r.hostAddr}:${r.hostPort}`, String(r.guestPort), r.protocol, state(r)]),
        ),
      );
    });

export const portCommands = () => [
  new Command('port')
    .summary("forward host ports to an instance's guest ports, live or from its next start")
    .addCommand(add())
    .addCommand(rm())
    .addCommand(list()),
];
