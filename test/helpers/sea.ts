import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot, type CliResult } from './env.js';

/** `npm run dist`'s output: the tool as one executable per platform. */
export const distBinDir = path.join(repoRoot, 'dist-bin');

/** Where qemu-aarch64-static finds the arm64 libraries Node links (Debian's *-arm64-cross packages). */
export const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';

/** The executable for an architecture; a missing one fails the test with the command that makes it. */
export function seaExecutable(arch: 'amd64' | 'arm64'): string {
  const file = path.join(distBinDir, `kubeadm-forever-linux-${arch}`);
  if (!fs.existsSync(file))
    throw new Error(`${file} is missing: run 'npm run dist' first (.ci/run does, before the tests)`);
  return file;
}

/**
 * A root directory holding only the executable (as /kubeadm-forever), the shared libraries `ldd`
 * lists for it at their paths, and an empty /tmp: no Node, no shell, no /usr/bin.
 */
export function minimalRoot(exe: string, dir: string): string[] {
  const ldd = execFileSync('ldd', [exe], { encoding: 'utf8' });
  const libs = [...ldd.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
  if (libs.length === 0) throw new Error(`ldd listed no libraries for ${exe}:\n${ldd}`);
  for (const lib of libs) {
    const to = path.join(dir, lib);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(fs.realpathSync(lib), to);
  }
  fs.copyFileSync(exe, path.join(dir, 'kubeadm-forever'));
  fs.chmodSync(path.join(dir, 'kubeadm-forever'), 0o755);
  fs.mkdirSync(path.join(dir, 'tmp'), { mode: 0o1777 });
  return libs;
}

/** Runs /kubeadm-forever in `root` with chroot (root only) and an empty environment. */
export function runInRoot(root: string, args: string[]): CliResult {
  if (process.getuid?.() !== 0) throw new Error('this test needs root: chroot into the minimal root');
  const chroot = ['/usr/sbin/chroot', '/sbin/chroot', '/usr/bin/chroot'].find((f) => fs.existsSync(f));
  if (!chroot) throw new Error('chroot (coreutils) not found');
  const r = spawnSync(chroot, [root, '/kubeadm-forever', ...args], {
    encoding: 'utf8',
    env: {},
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the arm64 executable under qemu-user-static with an empty environment. */
export function runArm64(exe: string, args: string[]): CliResult {
  const r = spawnSync('/usr/bin/qemu-aarch64-static', ['-L', ARM64_SYSROOT, exe, ...args], {
    encoding: 'utf8',
    env: {},
    timeout: 300_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
