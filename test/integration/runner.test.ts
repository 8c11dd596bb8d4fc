/**
 * The runner against real QEMU (TCG here): a fixture system image built from Debian's cloud kernel and a
 * busybox initramfs, booted through the bundled CLI exactly as a user would.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Sandbox, VMSTUB, waitFor } from '../helpers/cli.js';
import { fixtureSystemImage, isRoot, type FixtureImage } from '../helpers/fixture.js';

const BOOT_TIMEOUT = 90_000;

let fixture: FixtureImage;
let box: Sandbox;
let work: string;

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

async function freePort(): Promise<number> {
  const { freeLoopbackPort } = await import('../../src/vm/ports.js');
  return freeLoopbackPort();
}

const booted = (name: string) =>
  box.waitForConsole(name, `${name} to boot`, 'VMSTUB-FIXTURE-READY', BOOT_TIMEOUT);

interface ShowJson {
  name: string;
  state: string;
  accel?: string;
  sshPort?: number;
  definition: { data?: { path: string; format: string }; memoryMiB: number };
  lastExit?: { reason: string };
  paths: { console: string; qmp: string; dir: string };
}

const show = (name: string): ShowJson => {
  const r = box.run(['show', '--json', name]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as ShowJson;
};

before(() => {
  fixture = fixtureSystemImage();
  box = new Sandbox();
  work = mkdtempSync(join(tmpdir(), 'vmstub-runner-'));
});

after(() => {
  box.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('a detached VM with a data disk, a share, fw_cfg items and a port forward', () => {
  let httpPort: number;

  test(
    'run --detach boots it and the console log shows what the guest saw',
    { timeout: 150_000 },
    async () => {
      const disk = join(work, 'data.qcow2');
      assert.equal(box.run(['allocate', '--format', 'qcow2', disk, '256M']).code, 0);
      const share = join(work, 'share');
      mkdirSync(share);
      writeFileSync(join(share, 'marker'), 'shared-from-host');
      writeFileSync(join(work, 'fw.txt'), 'file-through-fwcfg');
      httpPort = await freePort();
      // prettier-ignore
      const r = box.run([
      'run', '--detach', '--name', 'fx', '--memory', '512M', '--cpus', '1',
      '--data', disk, '--share', share,
      '--fw-cfg', 'fixture.marker=hello,world', '--fw-cfg', `opt/fixture.file=@${join(work, 'fw.txt')}`,
      '--hostfwd', `${httpPort}:80`, fixture.image,
    ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^fx is running \((TCG|KVM), 1 vCPU, 512 MiB, ssh on 127\.0\.0\.1:\d+\)/);
      assert.match(r.stderr, isRoot ? /share .* as 'fs': virtiofs/ : /share .* as 'fs': 9p/);
      await booted('fx');
      const log = box.consoleLog('fx');
      assert.match(log, /DISK vda serial=system/);
      assert.match(log, /DISK vdb serial=data sectors=524288/);
      assert.match(log, /FWCFG opt\/org\.vmstub\/name=fx/);
      assert.match(log, /FWCFG opt\/fixture\.marker=hello,world/);
      assert.match(log, /FWCFG opt\/fixture\.file=file-through-fwcfg/);
      // Debian's cloud kernel has virtiofs but no 9p, so the guest can only mount the share over virtiofs.
      if (isRoot) assert.match(log, /SHARE virtiofs shared-from-host/);
    },
  );

  test('list --json and show --json report it', () => {
    const list = box.run(['list', '--json']);
    assert.equal(list.code, 0);
    const items = JSON.parse(list.stdout) as ShowJson[];
    assert.deepEqual(
      items.map((i) => [i.name, i.state]),
      [['fx', 'running']],
    );
    const info = show('fx');
    assert.equal(info.state, 'running');
    assert.ok(info.accel === 'tcg' || info.accel === 'kvm');
    assert.equal(typeof info.sshPort, 'number');
    assert.equal(info.definition.data?.format, 'qcow2');
    assert.equal(info.definition.memoryMiB, 512);
    const human = box.run(['list']);
    assert.match(human.stdout, /^NAME\s+STATE\s+ACCEL/);
    assert.match(human.stdout, /\nfx\s+running\s+(tcg|kvm)\s+1\s+512 MiB\s+127\.0\.0\.1:\d+/);
  });

  test('the console socket carries a command to the guest and its answer back', async () => {
    const sock = connect(show('fx').paths.console);
    let seen = '';
    sock.on('data', (d: Buffer) => (seen += d.toString()));
    await new Promise((r) => sock.once('connect', r));
    sock.write('echo $((6*7))-ROUNDTRIP\n');
    await waitFor('the answer on the console', () => seen.includes('42-ROUNDTRIP'), 20_000);
    sock.destroy();
  });

  test('vmstub console relays stdin and stdout through the socket', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, [VMSTUB, 'console', 'fx'], {
      env: box.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin.write('echo $((7*6))-VIA-CLI\n');
    await waitFor('the answer through vmstub console', () => out.includes('42-VIA-CLI'), 20_000);
    child.stdin.write(Buffer.from([0x1d])); // Ctrl-] detaches
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0);
    assert.equal(show('fx').state, 'running', 'detaching leaves the VM running');
  });

  test('the port forward reaches a server in the guest', async () => {
    const body = await waitFor(
      'HTTP through the forward',
      async () => httpGet(httpPort).catch(() => ''),
      30_000,
    );
    assert.equal((await body).trim(), 'fixture-http-ok');
  });

  test("ssh-config prints its block with this start's port, and its Include line takes it in", () => {
    const port = show('fx').sshPort!;
    const block = box.run(['ssh-config', 'fx']);
    assert.equal(block.code, 0, block.stderr);
    assert.match(block.stdout, /^Host fx vmstub-fx$/m);
    assert.match(block.stdout, new RegExp(`^  Port ${port}$`, 'm'));
    const include = box.run(['ssh-config']);
    assert.match(include.stdout, /^Include \S+\/\*\/ssh\/config\n$/);
    writeFileSync(join(work, 'ssh_config'), include.stdout);
    assert.match(
      execFileSync('ssh', ['-G', '-F', join(work, 'ssh_config'), 'fx'], { encoding: 'utf8' }),
      new RegExp(`^port ${port}$`, 'm'),
    );
  });

  test('port add forwards another host port to the running guest at once, port rm takes it off', async () => {
    const extra = await freePort();
    const add = box.run(['port', 'add', 'fx', `${extra}:80`]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, `fx: forwarding 127.0.0.1:${extra} -> 80/tcp\n`);
    assert.equal((await httpGet(extra)).trim(), 'fixture-http-ok');
    const rows = JSON.parse(box.run(['port', 'list', '--json', 'fx']).stdout) as {
      hostPort: number;
      guestPort: number;
      ssh: boolean;
      recorded: boolean;
      active: boolean;
    }[];
    const row = (port: number) => rows.find((r) => r.hostPort === port);
    assert.deepEqual([row(extra)?.recorded, row(extra)?.active], [true, true]);
    assert.deepEqual([row(httpPort)?.recorded, row(httpPort)?.active], [true, true]);
    assert.deepEqual([row(show('fx').sshPort!)?.ssh, row(show('fx').sshPort!)?.guestPort], [true, 22]);

    const again = box.run(['port', 'add', 'fx', `${extra}:8080`]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, new RegExp(`^vmstub: host port ${extra}/tcp is forwarded already`));
    // A host port someone else holds: QEMU refuses it, and neither the VM nor the definition changes.
    const taken = await freePort();
    const holder = createServer().listen(taken, '127.0.0.1');
    await new Promise((r) => holder.once('listening', r));
    const refused = box.run(['port', 'add', 'fx', `${taken}:80`]);
    holder.close();
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`host port ${taken} is in use`));
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);

    const rm = box.run(['port', 'rm', 'fx', String(extra)]);
    assert.equal(rm.code, 0, rm.stderr);
    await assert.rejects(httpGet(extra), /ECONNREFUSED/);
    const kept = JSON.parse(box.run(['show', '--json', 'fx']).stdout) as {
      definition: { hostfwds: { hostPort: number }[] };
    };
    assert.deepEqual(
      kept.definition.hostfwds.map((f) => f.hostPort),
      [httpPort],
      'the definition keeps the run --hostfwd one only',
    );
    const ssh = box.run(['port', 'rm', 'fx', String(show('fx').sshPort)]);
    assert.equal(ssh.code, 3);
    assert.match(ssh.stderr, /SSH forward, which vmstub keeps/);
  });

  test('disk grow grows the data disk under the running VM: the guest sees the new size', async () => {
    const r = box.run(['disk', 'grow', '--json', 'fx', '+128M']);
    assert.equal(r.code, 0, r.stderr);
    const grown = JSON.parse(r.stdout) as {
      previousBytes: number;
      bytes: number;
      live: boolean;
      filesystem: string;
    };
    assert.deepEqual(grown, {
      ...grown,
      previousBytes: 256 << 20,
      bytes: 384 << 20,
      live: true,
      filesystem: 'not-installed',
    });
    const sock = connect(show('fx').paths.console);
    let seen = '';
    sock.on('data', (d: Buffer) => (seen += d.toString()));
    await new Promise((r) => sock.once('connect', r));
    sock.write('echo "SIZE-$(cat /sys/block/vdb/size)-END"\n');
    await waitFor(
      'the guest to see the new size',
      () => seen.includes(`SIZE-${(384 << 20) / 512}-END`),
      20_000,
    );
    sock.destroy();
    const smaller = box.run(['disk', 'grow', 'fx', '300M']);
    assert.equal(smaller.code, 2);
    assert.match(
      smaller.stderr,
      /^vmstub: the disk is 384 MiB already; vmstub never shrinks a disk \(asked for 300 MiB\)\n$/,
    );
  });

  test('the QMP socket and console socket are private to their owner', () => {
    const info = show('fx');
    for (const p of [info.paths.qmp, info.paths.console]) assert.equal(statSync(p).mode & 0o077, 0, p);
    assert.equal(statSync(info.paths.dir).mode & 0o777, 0o700);
  });

  test('while it runs: a second start, rm, and ssh without a known host key are refused', () => {
    const again = box.run(['start', 'fx']);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /^vmstub: fx is already running \(pid \d+\)\n$/);
    const rm = box.run(['rm', 'fx']);
    assert.equal(rm.code, 3);
    assert.match(rm.stderr, /fx is running; stop it first/);
    const ssh = box.run(['ssh', 'fx', '--', 'true']);
    assert.equal(ssh.code, 3);
    assert.match(ssh.stderr, /no SSH host key is recorded for fx/);
    const snapshot = box.run(['snapshot', 'save', 'fx', 'live']);
    assert.equal(snapshot.code, 3);
    assert.match(snapshot.stderr, /fx is running; snapshots are of a stopped instance/);
  });

  let laterPort: number;
  test('stop powers it off through ACPI and cleans the run files', { timeout: 90_000 }, async () => {
    const r = box.run(['stop', 'fx']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'fx powered off\n');
    const info = show('fx');
    assert.equal(info.state, 'stopped');
    assert.equal(info.lastExit?.reason, 'guest-shutdown');
    assert.ok(!existsSync(info.paths.qmp) && !existsSync(info.paths.console));
    assert.match(box.consoleLog('fx'), /VMSTUB-FIXTURE-POWEROFF/);
    assert.equal(box.run(['stop', 'fx']).stdout, 'fx is not running\n');
    const grow = box.run(['disk', 'grow', 'fx', '512M']);
    assert.equal(
      grow.stdout,
      'fx: disk grown from 384 MiB to 512 MiB (qcow2); not a system vmstub installed: grow its filesystem in the guest\n',
    );
    const image = execFileSync('qemu-img', ['info', '--output=json', info.definition.data!.path], {
      encoding: 'utf8',
    });
    assert.equal((JSON.parse(image) as { 'virtual-size': number })['virtual-size'], 512 << 20);
    laterPort = await freePort();
    const later = box.run(['port', 'add', 'fx', `${laterPort}:80`]);
    assert.equal(later.stdout, `fx: forwarding 127.0.0.1:${laterPort} -> 80/tcp (from its next start)\n`);
    assert.match(
      box.run(['port', 'list', 'fx']).stdout,
      new RegExp(`127\\.0\\.0\\.1:${laterPort}\\s+80\\s+tcp\\s+at start`),
    );
  });

  test('snapshots of the stopped instance: a restore gives back exactly the disk saved', () => {
    const disk = show('fx').definition.data!.path;
    const qemuIo = (...commands: string[]) =>
      execFileSync('qemu-io', ['-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), disk], {
        encoding: 'utf8',
      });
    qemuIo('write -P 0x11 0 1M');
    const save = box.run(['snapshot', 'save', 'fx', 'base']);
    assert.equal(save.stdout, 'fx: saved snapshot base\n', save.stderr);
    const saved = join(work, 'saved.raw');
    execFileSync('qemu-img', ['convert', '-O', 'raw', disk, saved]);
    qemuIo('write -P 0x22 0 1M', 'write -P 0x33 100M 64k');
    const twice = box.run(['snapshot', 'save', 'fx', 'base']);
    assert.equal(twice.code, 3);
    assert.match(twice.stderr, /fx has a snapshot named base already/);

    const restore = box.run(['snapshot', 'restore', 'fx', 'base']);
    assert.equal(
      restore.stdout,
      'fx: restored base; what the disk held before is snapshot before-base\n',
      restore.stderr,
    );
    // qemu-img compare exits 0 only when both images read the same, sector for sector.
    execFileSync('qemu-img', ['compare', '-q', '-f', 'qcow2', '-F', 'raw', disk, saved]);
    const tags = (JSON.parse(box.run(['snapshot', 'list', '--json', 'fx']).stdout) as { tag: string }[]).map(
      (s) => s.tag,
    );
    assert.deepEqual(tags, ['base', 'before-base']);

    assert.equal(box.run(['snapshot', 'restore', '--discard-current', 'fx', 'before-base']).code, 0);
    assert.match(qemuIo('read -P 0x22 0 1M', 'read -P 0x33 100M 64k'), /read 65536\/65536 bytes/);
    assert.deepEqual(
      (JSON.parse(box.run(['snapshot', 'list', '--json', 'fx']).stdout) as { tag: string }[]).map(
        (s) => s.tag,
      ),
      ['base', 'before-base'],
      '--discard-current kept nothing new',
    );
    for (const tag of ['before-base', 'base']) assert.equal(box.run(['snapshot', 'rm', 'fx', tag]).code, 0);
    assert.equal(box.run(['snapshot', 'list', 'fx']).stdout, 'fx has no snapshots\n');
    const missing = box.run(['snapshot', 'restore', 'fx', 'base']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /^vmstub: fx has no snapshot named base\n$/);
    assert.match(box.run(['snapshot', 'save', 'fx', '123']).stderr, /snapshot tag '123'/);
  });

  test('of two concurrent starts exactly one succeeds', { timeout: 120_000 }, async () => {
    const [a, b] = await Promise.all([box.runAsync(['start', 'fx']), box.runAsync(['start', 'fx'])]);
    const codes = [a.code, b.code].sort();
    assert.deepEqual(codes, [0, 3], a.stderr + b.stderr);
    assert.match((a.code === 3 ? a : b).stderr, /fx is already running/);
    assert.equal(show('fx').state, 'running');
    const port = show('fx').sshPort!;
    assert.match(
      box.run(['ssh-config', 'fx']).stdout,
      new RegExp(`^  Port ${port}$`, 'm'),
      'rewritten at the start',
    );
    const forwards = JSON.parse(box.run(['port', 'list', '--json', 'fx']).stdout) as {
      hostPort: number;
      active: boolean;
    }[];
    assert.equal(
      forwards.find((f) => f.hostPort === laterPort)?.active,
      true,
      'the forward added while it was stopped',
    );
    const stop = box.run(['stop', '--force', 'fx']);
    assert.equal(stop.stdout, 'fx stopped (forced)\n');
  });

  test('rm removes the instance and, with --disks, its disk', () => {
    const disk = show('fx').definition.data!.path;
    const r = box.run(['rm', '--disks', 'fx']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `removed instance fx and disk ${disk}\n`);
    assert.ok(!existsSync(disk));
    assert.ok(!existsSync(box.instanceDir('fx')));
    assert.match(box.run(['ssh-config', 'fx']).stderr, /no instance named fx/, 'its ssh config went with it');
  });
});

describe('stopping, waiting and the other boot modes', () => {
  test('stop escalates to quit when the guest ignores ACPI', { timeout: 120_000 }, async () => {
    const r = box.run([
      'run',
      '--detach',
      '--name',
      'deaf',
      '--memory',
      '256M',
      '--append',
      'fixture.noacpi',
      fixture.image,
    ]);
    assert.equal(r.code, 0, r.stderr);
    await booted('deaf');
    const stop = box.run(['stop', '--timeout', '3', 'deaf']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stdout, 'deaf did not power off within 3 s; QEMU was told to quit\n');
    const info = show('deaf');
    assert.equal(info.state, 'stopped');
    assert.equal(info.lastExit?.reason, 'host-qmp-quit');
    assert.doesNotMatch(box.consoleLog('deaf'), /VMSTUB-FIXTURE-POWEROFF/);
    box.run(['rm', 'deaf']);
  });

  test('--wait-ssh returns once the guest answers with an SSH banner', { timeout: 150_000 }, () => {
    const r = box.run(
      ['run', '--detach', '--wait-ssh=120', '--name', 'w', '--memory', '256M', fixture.image],
      { timeoutMs: 140_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^w is running/);
    assert.match(box.consoleLog('w'), /VMSTUB-FIXTURE-READY/);
    box.run(['stop', '--force', 'w']);
    box.run(['rm', 'w']);
  });

  test(
    '--volatile-data gives a blank disk that is gone after stop; --rm removes the instance',
    { timeout: 120_000 },
    async () => {
      const r = box.run([
        'run',
        '--detach',
        '--rm',
        '--name',
        'vol',
        '--memory',
        '256M',
        '--volatile-data',
        '64M',
        fixture.image,
      ]);
      assert.equal(r.code, 0, r.stderr);
      await booted('vol');
      assert.match(box.consoleLog('vol'), /DISK vdb serial=data sectors=131072/);
      const image = join(box.instanceDir('vol'), 'volatile-data.img');
      assert.ok(existsSync(image));
      assert.equal(box.run(['stop', 'vol']).code, 0);
      await waitFor('the instance to be removed', () => !existsSync(box.instanceDir('vol')), 10_000);
    },
  );

  test('--hvc puts the console on hvc0', { timeout: 120_000 }, async () => {
    const r = box.run(['run', '--detach', '--name', 'hvc', '--memory', '256M', '--hvc', fixture.image]);
    assert.equal(r.code, 0, r.stderr);
    await booted('hvc');
    const cmdline = JSON.parse(readFileSync(join(box.instanceDir('hvc'), 'state.json'), 'utf8'))
      .qemuCommand as string[];
    assert.ok(cmdline.includes('console=hvc0'));
    box.run(['stop', '--force', 'hvc']);
    box.run(['rm', 'hvc']);
  });

  test(
    '--uefi boots the kernel through OVMF with a per-VM variables store',
    { timeout: 240_000 },
    async () => {
      const r = box.run(['run', '--detach', '--name', 'efi', '--memory', '512M', '--uefi', fixture.image]);
      assert.equal(r.code, 0, r.stderr);
      await box.waitForConsole('efi', 'efi to boot', 'VMSTUB-FIXTURE-READY', 200_000);
      assert.match(box.consoleLog('efi'), /efi: EFI v/i);
      const vars = join(box.instanceDir('efi'), 'efivars.fd');
      assert.ok(existsSync(vars));
      assert.equal(statSync(vars).mode & 0o777, 0o600);
      box.run(['stop', '--force', 'efi']);
      box.run(['rm', 'efi']);
    },
  );

  test(
    'foreground: the console is on stdin/stdout and the command ends with the VM',
    { timeout: 120_000 },
    async () => {
      const child = spawn(
        process.execPath,
        [VMSTUB, 'run', '--rm', '--name', 'fg', '--memory', '256M', fixture.image],
        {
          env: box.env,
          stdio: ['pipe', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor('the foreground guest to boot', () => out.includes('VMSTUB-FIXTURE-READY'), BOOT_TIMEOUT);
      child.stdin.write('echo $((2+3))-FOREGROUND\n');
      await waitFor('the answer', () => out.includes('5-FOREGROUND'), 20_000);
      child.stdin.write('poweroff -f\n');
      const code = await new Promise((r) => child.on('exit', r));
      assert.equal(code, 0);
      assert.ok(!existsSync(box.instanceDir('fg')), '--rm removed it');
    },
  );
});

describe('bad input: one clear line, a non-zero exit, nothing half-created', () => {
  const noInstances = () => assert.deepEqual(JSON.parse(box.run(['list', '--json']).stdout), []);

  test('usage errors exit 2', () => {
    const cases: [string[], RegExp][] = [
      [
        ['run', '--bogus', fixture.image],
        /^vmstub: run: unknown option --bogus \(see vmstub run --help\)\n$/,
      ],
      [['run', join(work, 'missing.squashfs')], /^vmstub: system image .*missing\.squashfs not found\n$/],
      [['run', '--memory', 'lots', fixture.image], /^vmstub: memory 'lots' is not a size/],
      [['run', '--hostfwd', '80', fixture.image], /^vmstub: --hostfwd '80' is not/],
      [['run', '--wait-ssh', fixture.image], /^vmstub: --wait-ssh needs --detach\n$/],
      [['allocate', join(work, 'x.img'), '10'], /^vmstub: size '10' needs a unit, e\.g\. 10G or 10M\n$/],
      [['frobnicate'], /^vmstub: unknown command 'frobnicate'/],
    ];
    for (const [args, re] of cases) {
      const r = box.run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line');
    }
    noInstances();
  });

  test('a forward whose host port is taken is named in one line, and leaves no instance', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const r = box.run(['run', '--detach', '--name', 'fwd', '--hostfwd', `${port}:80`, fixture.image]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^vmstub: cannot forward tcp:127\\.0\\.0\\.1:${port} to guest :80: that host port is in use`,
        ),
      );
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      noInstances();
    } finally {
      taken.close();
    }
  });

  test('an image without a kernel, or not squashfs at all, is refused and leaves no instance', () => {
    const tree = join(work, 'nokernel');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc', 'hostname'), 'x\n');
    const image = join(work, 'nokernel.squashfs');
    execFileSync('mksquashfs', [tree, image, '-noappend', '-quiet']);
    const r = box.run(['run', '--detach', '--name', 'nok', image]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^vmstub: .*nokernel\.squashfs has no boot\/kernel \(a system image carries boot\/kernel and boot\/initramfs\)\n$/,
    );
    const notSquash = join(work, 'plain.img');
    writeFileSync(notSquash, Buffer.alloc(8192));
    const r2 = box.run(['run', '--detach', '--name', 'plain', notSquash]);
    assert.equal(r2.code, 2);
    assert.match(r2.stderr, /is not a squashfs image/);
    noInstances();
  });

  test('a duplicate name is a conflict (exit 3)', () => {
    const r = box.run(['run', '--detach', '--name', 'dup', '--memory', '256M', fixture.image]);
    assert.equal(r.code, 0, r.stderr);
    const again = box.run(['run', '--detach', '--name', 'dup', fixture.image]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /an instance named dup already exists/);
    box.run(['stop', '--force', 'dup']);
    box.run(['rm', 'dup']);
  });

  test('QEMU failing to start (a bridge it may not use) leaves no instance behind', () => {
    // Deterministic on any machine: qemu-bridge-helper refuses a bridge /etc/qemu/bridge.conf does not allow.
    // (Forcing KVM used to serve, until a machine came whose KVM starts QEMU but cannot run the guest.)
    const r = box.run(['run', '--detach', '--net', 'bridge:vmstubnone0', '--name', 'br1', fixture.image]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^vmstub: QEMU failed to start: .*bridge helper failed \(log: .*qemu\.log\)\n$/);
    noInstances();
  });
});
