/**
 * `run --net tap:IF` and `--net bridge:BR` with real interfaces this test makes and removes: the fixture
 * guest (which sets 10.0.2.15 on its NIC and serves HTTP) is reached from the host through each, at
 * 10.0.2.15, with the host's side at 10.0.2.2. The bridge goes through qemu-bridge-helper, allowed in
 * /etc/qemu/bridge.conf only for this test's bridge and only when that file did not exist before.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { get } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Sandbox, waitFor } from '../helpers/cli.js';
import { fixtureSystemImage, isRoot, type FixtureImage } from '../helpers/fixture.js';

const TAP = 'vmstubtap0';
const BRIDGE = 'vmstubbr0';
const BRIDGE_CONF = '/etc/qemu/bridge.conf';
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const linkExists = (name: string) => existsSync(`/sys/class/net/${name}`);
/**
 * The host's TCP connections to a guest address that still wait on the guest (TIME-WAIT waits on no one).
 * One left in LAST-ACK when its guest is killed retransmits its FIN to the same address on the next
 * test's link, and the ARP that fails while that guest boots fails the next connect (EHOSTUNREACH).
 */
const openConnections = (address: string) =>
  execFileSync('ss', ['-Htn', 'exclude', 'time-wait', 'dst', address]).toString().trim();

function httpGet(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host, port: 80, path: '/', timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe(
  'run --net tap: and bridge: (real interfaces)',
  { skip: !isRoot && 'needs root (interfaces)' },
  () => {
    let fixture: FixtureImage;
    const box = new Sandbox();
    /** What this test made of /etc/qemu, to remove after: the file, and the directory if it was absent. */
    const made: string[] = [];
    before(() => {
      fixture = fixtureSystemImage();
      for (const l of [TAP, BRIDGE]) assert.ok(!linkExists(l), `${l} exists already: not this test's to use`);
    });
    after(() => {
      box.cleanup();
      for (const l of [TAP, BRIDGE]) if (linkExists(l)) ip('link', 'del', l);
      for (const path of made.reverse()) rmSync(path, { recursive: true, force: true });
    });

    const bootAndFetch = async (name: string, net: string) => {
      const r = box.run(['run', '--detach', '--name', name, '--memory', '256M', '--net', net, fixture.image]);
      assert.equal(r.code, 0, r.stderr);
      await box.waitForConsole(name, `${name} to boot`, 'VMSTUB-FIXTURE-READY', 90_000);
      assert.equal((await httpGet('10.0.2.15')).trim(), 'fixture-http-ok');
      await waitFor('the HTTP connection to close', () => openConnections('10.0.2.15') === '', 10_000);
      assert.equal(box.run(['stop', '--force', name]).code, 0);
      assert.equal(box.run(['rm', name]).code, 0);
    };

    test('tap:IF: the guest is on the host interface given', async () => {
      ip('tuntap', 'add', 'dev', TAP, 'mode', 'tap');
      ip('addr', 'add', '10.0.2.2/24', 'dev', TAP);
      ip('link', 'set', TAP, 'up');
      await bootAndFetch('tap1', `tap:${TAP}`);
      ip('link', 'del', TAP);
    });

    test('bridge:BR: the guest is on the bridge, through qemu-bridge-helper', async () => {
      assert.ok(
        !existsSync(BRIDGE_CONF),
        `${BRIDGE_CONF} exists: this test leaves other machines' files alone`,
      );
      ip('link', 'add', BRIDGE, 'type', 'bridge');
      ip('addr', 'add', '10.0.2.2/24', 'dev', BRIDGE);
      ip('link', 'set', BRIDGE, 'up');
      if (!existsSync(dirname(BRIDGE_CONF))) {
        mkdirSync(dirname(BRIDGE_CONF));
        made.push(dirname(BRIDGE_CONF));
      }
      writeFileSync(BRIDGE_CONF, `allow ${BRIDGE}\n`);
      made.push(BRIDGE_CONF);
      await bootAndFetch('br1', `bridge:${BRIDGE}`);
    });
  },
);
