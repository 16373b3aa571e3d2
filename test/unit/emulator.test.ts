import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findEmulator } from '../../src/build/emulator.js';
import { KfError } from '../../src/core/errors.js';

// Real files: a binfmt_misc-shaped directory and PATH directories with executables in them.
const host = { os: 'linux', arch: 'amd64' };
const arm64 = { os: 'linux', arch: 'arm64' };

describe('findEmulator: --emulator, then binfmt_misc, then qemu-<arch>-static on PATH', () => {
  let dir: string;
  let binfmt: string;
  let bin: string;
  let empty: string;

  const exe = (file: string, mode = 0o755) => {
    fs.writeFileSync(file, '#!/bin/sh\n', { mode });
    return file;
  };

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-emulator-'));
    binfmt = path.join(dir, 'binfmt');
    bin = path.join(dir, 'bin');
    empty = path.join(dir, 'empty');
    for (const d of [binfmt, bin, empty]) fs.mkdirSync(d);
    exe(path.join(bin, 'qemu-aarch64'));
    exe(path.join(bin, 'qemu-aarch64-static'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('prefers qemu-<arch>-static on PATH when nothing is registered', () => {
    const r = findEmulator(arm64, host, { pathEnv: `${empty}:${bin}`, binfmtDir: binfmt });
    expect(r).toEqual({
      emulator: {
        command: path.join(bin, 'qemu-aarch64-static'),
        description: path.join(bin, 'qemu-aarch64-static'),
      },
    });
  });

  it('uses an enabled binfmt_misc registration: the kernel runs the binary itself', () => {
    const reg = path.join(dir, 'binfmt-on');
    fs.mkdirSync(reg);
    fs.writeFileSync(path.join(reg, 'status'), 'enabled\n');
    fs.writeFileSync(
      path.join(reg, 'qemu-aarch64'),
      'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n',
    );
    expect(findEmulator(arm64, host, { pathEnv: bin, binfmtDir: reg })).toEqual({
      emulator: {
        command: undefined,
        description: 'binfmt_misc qemu-aarch64 (/usr/libexec/qemu-binfmt/aarch64-binfmt-P)',
      },
    });
    // a disabled entry, or binfmt_misc disabled as a whole, is not used
    fs.writeFileSync(path.join(reg, 'qemu-aarch64'), 'disabled\ninterpreter /x\n');
    expect(findEmulator(arm64, host, { pathEnv: empty, binfmtDir: reg })).toHaveProperty('reason');
    fs.writeFileSync(path.join(reg, 'qemu-aarch64'), 'enabled\ninterpreter /x\n');
    fs.writeFileSync(path.join(reg, 'status'), 'disabled\n');
    expect(findEmulator(arm64, host, { pathEnv: empty, binfmtDir: reg })).toHaveProperty('reason');
  });

  it('without any emulator: a reason that says what to install, never an error', () => {
    const r = findEmulator(arm64, host, { pathEnv: empty, binfmtDir: binfmt });
    expect(r).toEqual({
      reason: expect.stringMatching(
        /^built for linux\/arm64, this host is linux\/amd64; no emulator found: no binfmt_misc qemu-aarch64 registration, no qemu-aarch64-static or qemu-aarch64 on PATH \(install qemu-user-static or pass --emulator\)$/,
      ),
    });
  });

  it('skips a file on PATH that is not executable, and relative PATH entries', () => {
    const noexec = path.join(dir, 'noexec');
    fs.mkdirSync(noexec);
    exe(path.join(noexec, 'qemu-aarch64-static'), 0o644);
    expect(findEmulator(arm64, host, { pathEnv: `${noexec}:bin`, binfmtDir: binfmt })).toHaveProperty(
      'reason',
    );
  });

  it('--emulator PATH is used as given; --emulator none runs nothing foreign', () => {
    const own = exe(path.join(dir, 'my-qemu'));
    expect(findEmulator(arm64, host, { explicit: own, pathEnv: empty, binfmtDir: binfmt })).toEqual({
      emulator: { command: own, description: own },
    });
    expect(findEmulator(arm64, host, { explicit: 'none', pathEnv: bin, binfmtDir: binfmt })).toEqual({
      reason: 'built for linux/arm64, this host is linux/amd64; no emulator (--emulator none)',
    });
  });

  it('refuses an --emulator that is missing, a directory or not executable', () => {
    for (const bad of [path.join(dir, 'missing'), bin, exe(path.join(dir, 'plain'), 0o644)]) {
      expect(() => findEmulator(arm64, host, { explicit: bad })).toThrow(KfError);
    }
  });

  it('another operating system, or an architecture QEMU lacks: a reason', () => {
    expect(findEmulator({ os: 'windows', arch: 'amd64' }, host, { pathEnv: bin })).toEqual({
      reason: expect.stringContaining("no user-mode emulator runs another operating system's binaries"),
    });
    expect(findEmulator({ os: 'linux', arch: 'wasm' }, host, { pathEnv: bin })).toEqual({
      reason: expect.stringContaining('QEMU has no user-mode emulator for wasm'),
    });
  });
});
