import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cachePath, keepingOf } from '../../src/package-cache/policy.js';
import { packageCacheSkipped } from '../../src/package-cache/index.js';
import { resolveSpec } from '../../src/installer/spec.js';

const u = (s: string) => new URL(s);

describe('which downloads the package cache keeps', () => {
  it('keeps packages and files named by their hash for good', () => {
    for (const url of [
      'http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb',
      'http://deb.debian.org/debian/pool/main/d/debian-installer/x_1_amd64.udeb',
      'http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/0b7a3d8a6a7d1f1c2e3b4a5f6e7d8c9b0a1b2c3d4e5f60718293a4b5c6d7e8f9',
      'http://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/Packages/bash-5.1.8-9.el9.x86_64.rpm',
      'http://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/repodata/8c4a0c3bd6e08f3a8e8d9d5e2c0d0b0e6f3e2b7a4f6d1c9e8b7a6f5e4d3c2b1a-primary.xml.gz',
    ])
      assert.equal(keepingOf(u(url)), 'immutable', url);
  });

  it('fetches anything that can change under the same name afresh (kept only for when the mirror is gone)', () => {
    for (const url of [
      'http://deb.debian.org/debian/dists/bookworm/InRelease',
      'http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages.xz',
      'http://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/repodata/repomd.xml',
      'http://mirror.stream.centos.org/9-stream/BaseOS/x86_64/os/repodata/primary.xml.gz',
      'http://distfiles.gentoo.org/releases/amd64/autobuilds/latest-stage3-amd64-openrc.txt',
    ])
      assert.equal(keepingOf(u(url)), 'index', url);
  });

  it('passes through what it cannot or should not keep: https, and answers to a query', () => {
    assert.equal(
      keepingOf(u('https://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb')),
      'pass',
    );
    assert.equal(keepingOf(u('http://mirrors.example/metalink?repo=fedora-39&arch=x86_64')), 'pass');
  });

  it('stores a URL under its host and path, never outside the cache', () => {
    assert.equal(
      cachePath(u('http://127.0.0.1:8080/debian/pool/main/h/hello/hello_2.10-3_amd64.deb')),
      '127.0.0.1_8080/debian/pool/main/h/hello/hello_2.10-3_amd64.deb',
    );
    // The URL parser resolves dot segments, so a path cannot climb out of its host's directory.
    assert.equal(cachePath(u('http://m.example/debian/../../../etc/passwd')), 'm.example/etc/passwd');
    assert.equal(cachePath(u('http://m.example/a/%2e%2e/%2e%2e/etc/passwd')), 'm.example/etc/passwd');
    assert.equal(cachePath(u('http://m.example/a/..%2f..%2fetc/passwd')), undefined, 'an encoded slash');
    assert.equal(cachePath(u('http://m.example/debian/dists/')), undefined, 'a directory listing');
  });
});

describe('when an install does without the package cache', () => {
  const defaults = { hostname: 'web1', timezone: 'UTC', sshKeys: [], arch: 'x86_64' as const };
  it('uses it unless told not to or the user names a proxy of their own', () => {
    assert.equal(packageCacheSkipped(resolveSpec({ distro: 'debian12' }, defaults), false), undefined);
    assert.equal(
      packageCacheSkipped(resolveSpec({ distro: 'debian12' }, defaults), true),
      '--no-package-cache',
    );
    assert.match(
      packageCacheSkipped(
        resolveSpec({ distro: 'debian12', proxy: 'http://10.0.2.2:3128' }, defaults),
        false,
      ) ?? '',
      /--proxy http:\/\/10\.0\.2\.2:3128/,
    );
  });
});
