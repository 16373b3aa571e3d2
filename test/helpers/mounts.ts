import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliPath, type CliResult } from './env.js';

/**
 * Runs the built CLI in a private mount namespace (`unshare -m`, needs root, as CI is) where
 * `dir` is a fresh tmpfs of `size` (e.g. "64k"; ENOSPC past it) or `dir` itself bind-mounted
 * read-only (EROFS). Nothing outside the namespace sees either mount.
 */
export function runCliInMount(
  mount: { tmpfs: string } | { readOnly: true },
  dir: string,
  args: string[],
  /** wrap: a shell snippet run instead of `exec "$@"` (with the CLI as "$@"), e.g. to look inside the mount after it */
  opts: { input?: string; wrap?: string } = {},
): CliResult {
  if (process.getuid?.() !== 0)
    throw new Error('this test needs root: `unshare -m` and mount make the private tmpfs or read-only mount');
  const setup =
    'tmpfs' in mount
      ? 'mount -t tmpfs -o "size=$1" tmpfs "$2"'
      : 'mount --bind "$2" "$2" && mount -o remount,bind,ro "$2" "$2"';
  const script = `${setup} && shift 2 && ${opts.wrap ?? 'exec "$@"'}`;
  const size = 'tmpfs' in mount ? mount.tmpfs : '-';
  const r = spawnSync(
    'unshare',
    ['-m', 'sh', '-c', script, 'sh', size, dir, process.execPath, cliPath, ...args],
    {
      encoding: 'utf8',
      input: opts.input,
      timeout: 120_000,
    },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the built CLI under GNU time (test-env.sh installs it) and adds its peak RSS in MB. */
export function runCliMeasured(
  args: string[],
  opts: { stdinFile?: string } = {},
): CliResult & { peakRssMb: number } {
  if (!fs.existsSync('/usr/bin/time'))
    throw new Error('/usr/bin/time (GNU time) is missing: run scripts/test-env.sh up');
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kf-rss-')), 'time.txt');
  const stdin = opts.stdinFile ? fs.openSync(opts.stdinFile, 'r') : 'pipe';
  try {
    const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', out, process.execPath, cliPath, ...args], {
      encoding: 'utf8',
      stdio: [stdin, 'pipe', 'pipe'],
      timeout: 120_000,
    });
    const kb = Number(fs.readFileSync(out, 'utf8').trim().split('\n').pop());
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, peakRssMb: kb / 1024 };
  } finally {
    if (typeof stdin === 'number') fs.closeSync(stdin);
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}
