/**
 * Bad input and lost data, as a user meets them: every malformed flag, file, spec, image, disk and state
 * gets one line starting `vmstub:`, the documented exit code, and leaves nothing behind; rm keeps disks;
 * list survives a damaged instance. Runs the bundled CLI; images are real squashfs files made here.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Sandbox } from '../helpers/cli.js';
import { testDefinition } from '../helpers/definition.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const definition = (name: string, data?: string) =>
  testDefinition(name, {
    system: '/nonexistent/stub.squashfs',
    ...(data ? { data: { path: data, format: 'raw' as const } } : {}),
  });

describe('bad input, disks and damaged state', () => {
  const box = new Sandbox();
  const files = join(box.home, 'files');
  const instances = join(box.home, 'instances');
  const file = (name: string) => join(files, name);

  /** An instance as `vmstub create` leaves one: the definition, a disk with data, an install status. */
  function madeByCreate(name: string, phase: string): { dir: string; disk: string } {
    const dir = join(instances, name);
    mkdirSync(join(dir, 'ssh'), { recursive: true, mode: 0o700 });
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, randomBytes(1 << 20));
    writeFileSync(join(dir, 'vm.json'), JSON.stringify(definition(name, disk)));
    writeFileSync(join(dir, 'install-spec.json'), JSON.stringify({ distro: 'debian12' }));
    writeFileSync(
      join(dir, 'install.json'),
      JSON.stringify({
        phase,
        step: 'bootstrap',
        log: join(dir, 'install.log'),
        attempt: 1,
        updatedAt: 'now',
      }),
    );
    return { dir, disk };
  }

  before(() => {
    mkdirSync(files, { recursive: true });
    writeFileSync(file('garbage.img'), randomBytes(100_000));
    writeFileSync(file('empty.img'), '');
    mkdirSync(file('a-directory'));
    mkdirSync(join(files, 'tree', 'etc'), { recursive: true });
    writeFileSync(join(files, 'tree', 'etc', 'hostname'), 'x\n');
    execFileSync('mksquashfs', [join(files, 'tree'), file('no-kernel.squashfs'), '-quiet', '-noappend']);
    mkdirSync(join(files, 'tree', 'boot'));
    writeFileSync(join(files, 'tree', 'boot', 'kernel'), randomBytes(4096));
    writeFileSync(join(files, 'tree', 'boot', 'initramfs'), randomBytes(4096));
    for (let i = 0; i < 64; i++) writeFileSync(join(files, 'tree', `filler${i}`), randomBytes(65536));
    execFileSync('mksquashfs', [
      join(files, 'tree'),
      file('whole.squashfs'),
      '-quiet',
      '-noappend',
      '-noI',
      '-noD',
    ]);
    const whole = readFileSync(file('whole.squashfs'));
    writeFileSync(file('truncated.squashfs'), whole.subarray(0, Math.floor(whole.length / 3)));
    writeFileSync(
      file('three-problems.yaml'),
      'distro: almalinux9\nfilesystem: btrfs\ntimezone: Mars/Olympus\nlocale: xx_YY.UTF-8\n',
    );
    writeFileSync(file('not-yaml.yaml'), 'distro: [debian12\n');
    writeFileSync(
      file('user-data-bad.yaml'),
      '#cloud-config\nhostnme: web7\nusers:\n  - name: bob\n    lock_passwd: maybe\nwrite_files:\n  - content: x\n',
    );
    writeFileSync(file('user-data-script.sh'), '#!/bin/sh\necho hi\n');
    writeFileSync(file('user-data-pinned.yaml'), '#cloud-config\npackages:\n  - [tree, "2.1.0-1"]\n');
    writeFileSync(file('user-data-host-keys.yaml'), '#cloud-config\nssh_deletekeys: true\n');
    writeFileSync(
      file('user-data-gzip.yaml'),
      '#cloud-config\nwrite_files:\n  - path: /x\n    encoding: gzip\n    content: plain\n',
    );
    writeFileSync(
      file('files.yaml'),
      'distro: debian12\nfiles:\n  - path: etc/motd\n    content: hi\n    mode: 0644\n',
    );
    writeFileSync(file('resume.yaml'), 'distro: debian12\nresume: true\n');
    writeFileSync(file('bad-image.yaml'), 'name: web\ndistro: gentoo\narch: riscv64\nformats: [dvd]\n');
    writeFileSync(
      file('bad-rpm-image.yaml'),
      'name: web\ndistro: centos9stream\narch: aarch64\nsecurityMirror: http://127.0.0.1:9/\ndocs: false\n',
    );
    writeFileSync(file('machine.yaml'), 'distro: debian12\ncpus: 0\nforwards: [eighty]\n');
    // An arm64 Image header (its magic at 0x38), and a stub for aarch64 whose kernel is an x86_64 bzImage.
    const arm64 = Buffer.alloc(4096);
    arm64.write('ARM\x64', 0x38, 'latin1');
    writeFileSync(file('arm64-Image'), arm64);
    const riscv = Buffer.alloc(4096);
    riscv.write('RSC\x05', 0x34, 'latin1');
    writeFileSync(file('riscv64-Image'), riscv);
    mkdirSync(join(files, 'x86-stub', 'boot'), { recursive: true });
    const bzImage = Buffer.alloc(8192);
    bzImage.write('HdrS', 0x202, 'latin1');
    writeFileSync(join(files, 'x86-stub', 'boot', 'kernel'), bzImage);
    writeFileSync(join(files, 'x86-stub', 'boot', 'initramfs'), randomBytes(512));
    mkdirSync(join(box.home, 'images'), { recursive: true });
    execFileSync('mksquashfs', [
      join(files, 'x86-stub'),
      join(box.home, 'images', 'stub-aarch64.squashfs'),
      '-quiet',
      '-noappend',
    ]);
  });

  after(() => box.cleanup());

  const refusals: [string[], number, RegExp][] = [
    [[], 2, /^Usage: vmstub COMMAND/],
    [['frobnicate'], 2, /unknown command 'frobnicate'/],
    [['run', '--bogus'], 2, /unknown option --bogus/],
    [['run', '--detach', '--cpus', '0', 'x'], 2, /--cpus '0' must be a whole number from 1 to 64/],
    [['run', '--detach', 'garbage.img'], 2, /garbage\.img is not a squashfs image/],
    [['run', '--detach', 'empty.img'], 2, /empty\.img is not a squashfs image/],
    [['run', '--detach', 'a-directory'], 2, /cannot read system image .*a-directory: EISDIR/],
    [['run', '--detach', 'no-kernel.squashfs'], 2, /has no boot\/kernel/],
    [['run', '--detach', 'truncated.squashfs'], 2, /truncated\.squashfs/],
    [['run', '--detach', 'nowhere.squashfs'], 2, /system image .*nowhere\.squashfs not found/],
    [['run', '--detach', '--data', 'no-disk.img', 'whole.squashfs'], 2, /data disk .*no-disk\.img not found/],
    [
      ['run', '--detach', '--accel', 'kvm', '--kernel', 'arm64-Image'],
      2,
      /--accel kvm: KVM runs guests of the host's architecture only \(x86_64\), not aarch64; use --accel tcg/,
    ],
    [
      ['run', '--detach', '--handoff', 'kexec', '--kernel', 'riscv64-Image'],
      2,
      /--handoff kexec: the riscv64 stub has no kexec \(Debian 13 has no kexec-tools for riscv64\)/,
    ],
    [
      ['run', '--detach', '--arch', 'riscv64', '--iso', 'garbage.img'],
      2,
      /--arch riscv64: vmstub boots riscv64 guests from a kernel \(a system image or --kernel\), not through firmware/,
    ],
    [
      ['run', '--detach', '--arch', 'aarch64', '--kernel', 'riscv64-Image'],
      2,
      /--arch is for --iso and --boot-disk; a system image or a kernel says its own/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--arch', 'riscv64'],
      2,
      /Debian 12 \(bookworm\) is not available for riscv64 \(x86_64, aarch64\)/,
    ],
    [
      ['create', 'web1', '--distro', 'debian13', '--arch', 'mips'],
      2,
      /--arch 'mips' is not one of x86_64, aarch64, riscv64/,
    ],
    [
      ['create', 'web1', '--distro', 'debian13', '--arch', 'aarch64'],
      2,
      /stub-aarch64\.squashfs: its kernel is for x86_64, not aarch64; build the aarch64 stub with vmstub image build stub --arch aarch64/,
    ],
    [['create', 'web1'], 2, /--distro is required/],
    [
      ['create', 'web1', '--distro', 'debian12', '--user-data', 'user-data-bad.yaml'],
      2,
      /user-data-bad\.yaml: 3 problems: hostnme: is not a cloud-config key \(line 2\); users\[0\]\.lock_passwd: must be boolean \(line 5\); write_files\[0\]: must have required property 'path' \(line 7\)\n$/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--user-data', 'user-data-script.sh'],
      2,
      /user-data must be a #cloud-config file/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--user-data', 'user-data-pinned.yaml'],
      2,
      /packages\[0\]: version pins are not applied/,
    ],
    [
      [
        'create',
        'web1',
        ...['--distro', 'debian12', '--package', 'cloud-init', '--user-data', 'user-data-host-keys.yaml'],
      ],
      2,
      /user-data-host-keys\.yaml: ssh_deletekeys: true: would replace the SSH host keys vmstub made and recorded/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--user-data', 'user-data-gzip.yaml'],
      2,
      /user-data-gzip\.yaml: write_files\[0\]\.content: is not gzip \(/,
    ],
    [
      ['create', 'web1', '--config', 'files.yaml'],
      2,
      /files\.yaml: 2 problems: files\[0\]\.path: 'etc\/motd' is not an absolute file path \(without \.\.\) \(line 3\); files\[0\]\.mode: must be a string \(in quotes: '644'\) \(line 5\)/,
    ],
    [
      ['create', 'web1', '--distro', 'centos6', '--first-boot', 'true'],
      2,
      /firstBoot: CentOS 6\.10 boots with upstart: vmstub runs boot commands through systemd units only\n$/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--user-data', 'nonexistent.yaml'],
      2,
      /--user-data: cannot read nonexistent\.yaml: ENOENT/,
    ],
    [['create', 'web1', '--distro', 'windows11'], 2, /unknown distribution 'windows11'/],
    [
      ['create', 'web1', '--distro', 'debian12', '--timezone', 'Mars/Olympus'],
      2,
      /'Mars\/Olympus' is not in the time zone database/,
    ],
    [
      ['create', 'web1', '--distro', 'almalinux9', '--filesystem', 'btrfs'],
      2,
      /AlmaLinux 9's kernel cannot boot from btrfs/,
    ],
    [
      ['plan', '--distro', 'almalinux9', '--filesystem', 'btrfs'],
      2,
      /AlmaLinux 9's kernel cannot boot from btrfs/,
    ],
    [
      ['create', 'web1', '--distro', 'centos9stream', '--encrypt'],
      2,
      /encrypt: CentOS Stream 9's initramfs \(dracut\) is not set up by vmstub to unlock an encrypted root yet/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--encrypt', '--key-file', 'nonexistent.key'],
      2,
      /--key-file .*nonexistent\.key: no such file\n$/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--encrypt', '--key-file', 'empty.img'],
      2,
      /its first line is empty/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--encrypt'],
      2,
      /--encrypt: give the passphrase with --key-file FILE \(there is no terminal to ask at\)/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--unlock', 'console'],
      2,
      /unlock: is for an encrypted root/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--locale', 'xx_YY.UTF-8'],
      2,
      /locale: 'xx_YY\.UTF-8' is not a locale glibc supports/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--user', 'Bad-Name'],
      2,
      /users\[0\]\.name: 'Bad-Name' is not a valid user name/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--mirror', 'notaurl'],
      2,
      /mirror: 'notaurl' is not an http\(s\) or file URL/,
    ],
    [['create', 'web1', '--distro', 'debian12', '--disk', 'lots'], 2, /disk: 'lots' is not a size/],
    [['create', 'web1', '--distro', 'debian12', '--disk', '0'], 2, /disk: '0' needs a unit/],
    [
      ['create', 'web1', '--distro', 'debian12', '--disk', '256M'],
      2,
      /^vmstub: a 256 MiB disk is too small for a xfs root \(mkfs needs at least 300 MiB\)\n$/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--filesystem', 'btrfs', '--disk', '100M'],
      2,
      /a 100 MiB disk is too small for a btrfs root \(mkfs needs at least 109 MiB\)/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--ssh-key', 'nope.pub'],
      2,
      /--ssh-key: cannot read nope\.pub/,
    ],
    [['create', 'web1', '--config', 'nope.yaml'], 2, /cannot read nope\.yaml: ENOENT/],
    [['create', 'web1', '--config', 'not-yaml.yaml'], 2, /not-yaml\.yaml is not valid YAML/],
    [
      ['create', 'web1', '--config', 'resume.yaml'],
      2,
      /resume.yaml: resume: is vmstub's to set, not a file's/,
    ],
    [
      ['create', 'web1', '--config', 'three-problems.yaml'],
      2,
      /three-problems\.yaml: 3 problems: filesystem: AlmaLinux 9's kernel cannot boot from btrfs \(xfs, ext4\) \(line 2\); timezone: .* \(line 3\); locale: .* \(line 4\)/,
    ],
    [['create', 'Bad_Name!', '--distro', 'debian12'], 2, /Bad_Name!/],
    [['start', 'nosuch'], 3, /no instance named nosuch/],
    [['stop', 'nosuch'], 3, /no instance named nosuch/],
    [['rm', 'nosuch'], 3, /no instance named nosuch/],
    [['ssh', 'nosuch'], 3, /no instance named nosuch/],
    [['ssh-config', 'nosuch'], 3, /no instance named nosuch/],
    [['port', 'add', 'nosuch', '8080:80'], 3, /no instance named nosuch/],
    [['port', 'add', 'nosuch', '8080'], 2, /^vmstub: port add '8080' is not HOSTPORT:GUESTPORT/],
    [['port', 'rm', 'nosuch', '80:80:80:80'], 2, /^vmstub: port rm '80:80:80:80' is not HOSTPORT:GUESTPORT/],
    [['disk', 'grow', 'nosuch', '+1G'], 3, /no instance named nosuch/],
    [['snapshot', 'save', 'nosuch', 'base'], 3, /no instance named nosuch/],
    [['snapshot', 'save', 'nosuch', 'bad tag'], 2, /snapshot tag 'bad tag'/],
    [['snapshot', 'restore', 'nosuch', 'base'], 3, /no instance named nosuch/],
    [['ssh-config', '--install', 'nosuch'], 2, /--install takes no NAME/],
    [['resume', 'nosuch'], 3, /no instance named nosuch/],
    [['allocate', 'garbage.img', '1K'], 2, /allocate never shrinks a disk/],
    [['allocate', join('no-dir', 'x.img'), '1G'], 2, /directory .*no-dir does not exist/],
    [
      ['image', 'build', 'bad-image.yaml'],
      2,
      /bad-image\.yaml: 2 problems: arch: Gentoo \(systemd stage3\) is not available for riscv64 \(x86_64, aarch64\) \(line 3\); formats\[0\]: 'dvd' is not one of squashfs, system, iso \(line 4\)/,
    ],
    [
      ['image', 'build', 'bad-rpm-image.yaml'],
      2,
      /bad-rpm-image\.yaml: 3 problems: arch: an image of CentOS Stream 9 is built for this machine's architecture \(x86_64\) only so far: the stub's tools run natively \(line 3\); securityMirror: CentOS Stream 9 has no security mirror of its own \(mirror serves all\) \(line 4\); docs: false is for Debian and Ubuntu images \(dpkg's path rules\) \(line 5\)/,
    ],
    [
      ['image', 'build', 'nosuch'],
      2,
      /image build: no config file nosuch \(an image config FILE\.yaml, or 'stub'\)/,
    ],
    [
      ['run', '--accel', 'hvf', 'whole.squashfs'],
      2,
      /^vmstub: run: --accel 'hvf' is not one of auto, kvm, tcg/,
    ],
    [
      ['create', 'web1', '--distro', 'debian12', '--filesystem', 'zfs'],
      2,
      /--filesystem 'zfs' is not one of/,
    ],
    [
      ['image', 'build', '--arch', 'sparc', 'stub'],
      2,
      /--arch 'sparc' is not one of x86_64, aarch64, riscv64/,
    ],
    [['run', '--name', 'a', '--name', 'b', 'whole.squashfs'], 2, /^vmstub: run: --name given twice/],
    [['create', 'web1', '--distro', 'debian12', '--disk', '8G', '--disk', '9G'], 2, /--disk given twice/],
    [['rm', '--', '--disks', 'web1'], 2, /^vmstub: rm: unexpected argument 'web1'/],
    [['stop', '--', '--force'], 2, /invalid name '--force'/],
    [['schema', 'nope'], 2, /^vmstub: schema: FILE 'nope' is not one of spec/],
    [['completion', 'tcsh'], 2, /^vmstub: completion: SHELL 'tcsh' is not one of bash, zsh, fish/],
    [
      ['create', 'web1', '--config', 'machine.yaml'],
      2,
      /machine\.yaml: 2 problems: cpus: .* \(line 2\); forwards\[0\]: .* \(line 3\)/,
    ],
  ];

  it('help asked for succeeds on stdout; help for a group without its command is a usage error', () => {
    for (const args of [['--help'], ['help'], ['help', 'run'], ['run', '--help'], ['image', 'build', '-h']]) {
      const r = box.run(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: vmstub /);
      assert.equal(r.stderr, '');
    }
    assert.equal(box.run(['--version']).stdout, 'vmstub 0.1.0\n');
    for (const args of [['image'], ['help', 'nosuch']]) {
      const r = box.run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^Usage: vmstub /);
    }
  });

  it('with --json, a refusal is also one JSON object on stdout (NDJSON for create)', () => {
    for (const args of [
      ['stop', '--json', 'nosuch'],
      ['create', 'web1', '--json', '--distro', 'windows11'],
      ['ssh', '--json', 'nosuch'],
    ]) {
      const r = box.run(args, { cwd: files });
      assert.notEqual(r.code, 0);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stdout);
      const e = JSON.parse(lines[0]!) as { type: string; message: string; exitCode: number };
      assert.equal(e.type, 'error');
      assert.equal(e.exitCode, r.code);
      assert.equal(`vmstub: ${e.message}\n`, r.stderr);
    }
  });

  it('refuses each with one line, its exit code, and nothing created', () => {
    for (const [args, code, re] of refusals) {
      const r = box.run(args, { cwd: files });
      const what = `vmstub ${args.join(' ')}`;
      assert.equal(r.code, code, `${what}: exit ${r.code}: ${r.stderr}`);
      assert.equal(r.stdout, '', `${what} printed to stdout`);
      if (args.length) {
        assert.equal(r.stderr.trim().split('\n').length, 1, `${what}: ${r.stderr}`);
        assert.match(r.stderr, /^vmstub: /, what);
      }
      assert.match(r.stderr, re, what);
      assert.deepEqual(existsSync(instances) ? readdirSync(instances) : [], [], `${what} left an instance`);
    }
    assert.equal(sha(file('garbage.img')), sha(file('garbage.img')), 'allocate left the file as it was');
    assert.equal(readFileSync(file('garbage.img')).length, 100_000);
  });

  it('rm keeps a created disk, moved out of the instance, byte for byte; rm --disks deletes it', () => {
    const { disk } = madeByCreate('kept', 'installed');
    const before = sha(disk);
    const r = box.run(['rm', 'kept']);
    assert.equal(r.code, 0, r.stderr);
    const moved = /^kept disk (\S+) \(moved out of the instance\)$/m.exec(r.stdout)?.[1];
    assert.ok(moved, r.stdout);
    assert.ok(moved.startsWith(join(box.home, 'disks') + '/'), moved);
    assert.equal(sha(moved), before);
    assert.ok(!existsSync(join(instances, 'kept')));

    const gone = madeByCreate('gone', 'installed');
    const d = box.run(['rm', '--disks', '--json', 'gone']);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual(JSON.parse(d.stdout), { removed: 'gone', keptDisks: [], deletedDisks: [gone.disk] });
    assert.ok(!existsSync(gone.disk));

    // A disk of the user's own, outside the instance, stays where it is.
    const own = file('own-disk.img');
    writeFileSync(own, randomBytes(4096));
    const dir = join(instances, 'own');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'vm.json'), JSON.stringify(definition('own', own)));
    const o = box.run(['rm', 'own']);
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stdout, new RegExp(`^kept disk ${own}$`, 'm'));
    assert.ok(existsSync(own));
  });

  it('list marks a damaged instance broken and lists the others; rm still removes it, keeping its disk', () => {
    madeByCreate('good', 'installed');
    const { disk } = madeByCreate('damaged', 'installed');
    writeFileSync(join(instances, 'damaged', 'vm.json'), '{"name": "damaged", ');
    mkdirSync(join(instances, 'empty-dir'));
    const r = box.run(['list']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^damaged\s+broken\s.*not valid JSON/m);
    assert.match(r.stdout, /^empty-dir\s+broken\s.*no instance named empty-dir/m);
    assert.match(r.stdout, /^good\s+stopped\s/m);
    const j = JSON.parse(box.run(['list', '--json']).stdout) as { name: string; state: string }[];
    assert.deepEqual(
      j.map((i) => [i.name, i.state]),
      [
        ['damaged', 'broken'],
        ['empty-dir', 'broken'],
        ['good', 'stopped'],
      ],
    );
    const before = sha(disk);
    const rm = box.run(['rm', 'damaged']);
    assert.equal(rm.code, 0, rm.stderr);
    const moved = /^kept disk (\S+)/m.exec(rm.stdout)![1]!;
    assert.equal(sha(moved), before);
    for (const n of ['good', 'empty-dir']) assert.equal(box.run(['rm', n]).code, 0);
  });

  it('clone: refused before anything is made, each in one line', () => {
    madeByCreate('unfinished', 'interrupted');
    madeByCreate('taken', 'installed');
    const plain = join(instances, 'handmade');
    mkdirSync(plain);
    writeFileSync(join(plain, 'vm.json'), JSON.stringify(definition('handmade')));
    const before = readdirSync(instances).sort();
    for (const [args, code, message] of [
      [['clone', 'nope', 'c1'], 3, /no instance named nope/],
      [
        ['clone', 'handmade', 'c1'],
        3,
        /handmade was not made by vmstub create; only an installed instance can be cloned/,
      ],
      [
        ['clone', 'unfinished', 'c1'],
        3,
        /unfinished's install did not finish; vmstub resume unfinished first/,
      ],
      [['clone', 'taken', 'unfinished'], 3, /unfinished exists/],
      [['clone', 'taken', 'Bad_Name!'], 2, /Bad_Name!/],
      [['clone', 'taken', 'c1', '--key-file', plain], 2, /--key-file: taken's root is not encrypted/],
    ] as const) {
      const r = box.run([...args]);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    assert.deepEqual(readdirSync(instances).sort(), before, 'no instance made or changed');
    assert.equal(JSON.parse(readFileSync(join(instances, 'taken', 'vm.json'), 'utf8')).data.format, 'raw');
    for (const n of ['unfinished', 'taken', 'handmade']) assert.equal(box.run(['rm', n]).code, 0);
  });

  it('rm: a source under a clone is refused; the clone goes, its kept disk flattened, the source untouched', () => {
    const { disk } = madeByCreate('src1', 'installed');
    const sourceBytes = readFileSync(disk);
    const dir = join(instances, 'copy1');
    mkdirSync(dir);
    const overlay = join(dir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', disk, '-F', 'raw', overlay]);
    execFileSync('qemu-io', ['-c', 'write -P 0x5a 0 4k', overlay], { stdio: 'ignore' });
    writeFileSync(
      join(dir, 'vm.json'),
      JSON.stringify({ ...definition('copy1'), data: { path: overlay, format: 'qcow2' } }),
    );
    const refused = box.run(['rm', 'src1']);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(
      refused.stderr,
      /^vmstub: src1's disk is under its clones' \(copy1\); remove them first \(vmstub rm copy1\)\n$/,
    );
    assert.ok(existsSync(disk), 'nothing removed');
    const r = box.run(['rm', 'copy1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const kept = (JSON.parse(r.stdout) as { keptDisks: string[] }).keptDisks;
    assert.equal(kept.length, 1);
    const flat = readFileSync(kept[0]!);
    assert.equal(flat.length, sourceBytes.length, 'one raw image, the size of the disk');
    assert.ok(
      flat.subarray(0, 4096).every((b) => b === 0x5a),
      "the clone's own writes are in it",
    );
    assert.ok(flat.subarray(4096).equals(sourceBytes.subarray(4096)), "and the source's data under them");
    assert.ok(readFileSync(disk).equals(sourceBytes), 'the source disk is untouched');
    assert.equal(box.run(['rm', 'src1']).code, 0, 'with its clone gone, the source can go');
  });

  it('an unfinished install is not started by accident, and says how to go on', () => {
    madeByCreate('half', 'interrupted');
    const start = box.run(['start', 'half']);
    assert.equal(start.code, 3, start.stderr);
    assert.match(
      start.stderr,
      /^vmstub: half's install did not finish \(install interrupted at bootstrap\); vmstub resume half/,
    );
    const again = box.run(['create', 'half', '--distro', 'debian12']);
    assert.equal(again.code, 3, again.stderr);
    assert.match(
      again.stderr,
      /half exists: install interrupted at bootstrap; continue with vmstub resume half/,
    );
    assert.match(box.run(['list']).stdout, /^half\s+interrupted\s/m);
    assert.match(box.run(['show', 'half']).stdout, /install:\s+install interrupted at bootstrap/);

    madeByCreate('done', 'installed');
    const r = box.run(['resume', 'done']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /done is installed already/);
    const plain = join(instances, 'plain');
    mkdirSync(plain);
    writeFileSync(join(plain, 'vm.json'), JSON.stringify(definition('plain')));
    const p = box.run(['resume', 'plain']);
    assert.equal(p.code, 3);
    assert.match(p.stderr, /plain was not made by vmstub create/);
  });
});
