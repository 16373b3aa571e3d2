import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { machineMismatch, parseBinaryHeader, readBinaryHead } from '../../src/carry/cache/elf.js';
import { fakeElf } from '../helpers/cache-fixtures.js';

describe('binary header parser', () => {
  it('reads /bin/ls of this x86-64 host as ELF machine 62 (amd64)', async () => {
    const head = await readBinaryHead('/bin/ls');
    expect(parseBinaryHeader(head)).toMatchObject({
      format: 'elf',
      machine: 62,
      bits: 64,
      endian: 'little',
      goArch: 'amd64',
    });
    expect(machineMismatch(head, { os: 'linux', arch: 'amd64' })).toBeNull();
    expect(machineMismatch(head, { os: 'linux', arch: 'arm64' })).toMatch(/built for amd64 .*expected arm64/);
  });

  it.each([
    ['arm64', 183],
    ['386', 3],
    ['arm', 40],
    ['ppc64le', 21],
    ['s390x', 22],
    ['riscv64', 243],
  ])('maps a %s header (e_machine %i) to its GOARCH', (arch, machine) => {
    const got = parseBinaryHeader(fakeElf(arch).subarray(0, 64));
    expect(got?.machine).toBe(machine);
    expect(got?.goArch).toBe(arch);
    expect(machineMismatch(fakeElf(arch), { os: 'linux', arch })).toBeNull();
  });

  it('tells big-endian ppc64 from ppc64le', () => {
    const be = fakeElf('ppc64le');
    be[5] = 2;
    be.writeUInt16BE(21, 18);
    expect(parseBinaryHeader(be)?.goArch).toBe('ppc64');
  });

  it('reads a PE header for windows and refuses an ELF there', () => {
    const pe = Buffer.alloc(512);
    pe.write('MZ', 0, 'latin1');
    pe.writeUInt32LE(0x80, 0x3c);
    pe.write('PE\0\0', 0x80, 'latin1');
    pe.writeUInt16LE(0x8664, 0x84);
    expect(parseBinaryHeader(pe)).toMatchObject({ format: 'pe', goArch: 'amd64' });
    expect(machineMismatch(pe, { os: 'windows', arch: 'amd64' })).toBeNull();
    expect(machineMismatch(fakeElf('amd64'), { os: 'windows', arch: 'amd64' })).toMatch(
      /ELF binary, expected PE/,
    );
  });

  it('refuses what is not a binary and reports formats it cannot check', () => {
    expect(parseBinaryHeader(Buffer.from('#!/bin/sh\necho hi\n'))).toBeNull();
    expect(parseBinaryHeader(Buffer.alloc(0))).toBeNull();
    expect(machineMismatch(Buffer.from('#!/bin/sh\n'), { os: 'linux', arch: 'amd64' })).toMatch(
      /not an ELF binary/,
    );
    expect(machineMismatch(fakeElf('amd64'), { os: 'darwin', arch: 'amd64' })).toMatch(/cannot check/);
  });

  it('reads only the head of a large file', async () => {
    const head = await readBinaryHead('/bin/ls');
    expect(head.length).toBeLessThanOrEqual(4096);
    expect(fs.statSync('/bin/ls').size).toBeGreaterThan(head.length);
  });
});
