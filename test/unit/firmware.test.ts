import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseFirmware, type FirmwareDescriptor } from '../../src/vm/firmware.js';

const x86 = (
  code: string,
  vars: string,
  features: string[],
  machines = ['pc-q35-*'],
): FirmwareDescriptor => ({
  'interface-types': ['uefi'],
  mapping: {
    device: 'flash',
    executable: { filename: code, format: 'raw' },
    'nvram-template': { filename: vars, format: 'raw' },
  },
  targets: [{ architecture: 'x86_64', machines }],
  features,
});

// Shaped like Debian 12's ovmf descriptors, plus entries that must never be chosen.
const descriptors = [
  {
    file: '40-edk2-x86_64-secure-enrolled.json',
    json: x86('/ovmf/CODE.ms.fd', '/ovmf/VARS.ms.fd', [
      'acpi-s3',
      'enrolled-keys',
      'requires-smm',
      'secure-boot',
    ]),
  },
  {
    file: '50-edk2-x86_64-secure.json',
    json: x86('/ovmf/CODE.secboot.fd', '/ovmf/VARS.fd', ['acpi-s3', 'requires-smm', 'secure-boot']),
  },
  {
    file: '60-edk2-x86_64.json',
    json: x86('/ovmf/CODE_4M.fd', '/ovmf/VARS_4M.fd', ['acpi-s3', 'verbose-dynamic']),
  },
  { file: '10-i440fx-only.json', json: x86('/fw/pc.fd', '/fw/pcvars.fd', [], ['pc-i440fx-*']) },
  {
    file: '20-memory-mapped.json',
    json: {
      ...x86('/fw/mem.fd', '/fw/memvars.fd', []),
      mapping: { device: 'memory', filename: '/fw/mem.fd' } as FirmwareDescriptor['mapping'],
    },
  },
  {
    file: '30-bios.json',
    json: { ...x86('/fw/bios.fd', '/fw/biosvars.fd', []), 'interface-types': ['bios'] },
  },
];

test('picks the plainest UEFI flash firmware for q35, not Secure Boot, SMM, i440fx-only, memory-mapped or BIOS', () => {
  const fw = chooseFirmware(descriptors, 'x86_64');
  assert.deepEqual(fw, {
    descriptor: '60-edk2-x86_64.json',
    code: '/ovmf/CODE_4M.fd',
    varsTemplate: '/ovmf/VARS_4M.fd',
    format: 'raw',
    requiresSmm: false,
  });
});

test('falls back to an SMM firmware when it is all there is, and says it needs SMM', () => {
  const fw = chooseFirmware(descriptors.slice(0, 2), 'x86_64');
  assert.equal(fw?.descriptor, '50-edk2-x86_64-secure.json');
  assert.equal(fw?.requiresSmm, true);
});

test('no firmware for another architecture', () => {
  assert.equal(chooseFirmware(descriptors, 'aarch64'), undefined);
  const arm = {
    file: '60-edk2-aarch64.json',
    json: {
      ...x86('/a/code.fd', '/a/vars.fd', []),
      targets: [{ architecture: 'aarch64', machines: ['virt-*'] }],
    },
  };
  assert.equal(chooseFirmware([...descriptors, arm], 'aarch64')?.code, '/a/code.fd');
});
