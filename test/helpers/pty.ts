import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliPath } from './env.js';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The built CLI on a real pseudo-terminal (util-linux `script`) of `cols` columns (set with
 * `stty` inside it) and TERM=`term`, without any CI variable (that alone turns a spinner off).
 * Returns the exit status and everything the terminal received.
 */
export function runCliInPty(
  args: string[],
  opts: { cols: number; term: string; timeout?: number },
): { status: number | null; bytes: number; text: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kf-pty-'));
  try {
    const script = path.join(dir, 'run.sh');
    // a script file: `script -c` takes one shell command line; every word quoted
    fs.writeFileSync(
      script,
      `stty cols ${opts.cols} rows 24\nexec ${[process.execPath, cliPath, ...args].map(quote).join(' ')}\n`,
    );
    const env: NodeJS.ProcessEnv = { ...process.env, TERM: opts.term };
    delete env.CI;
    const r = spawnSync('script', ['-q', '-e', '-c', `sh ${quote(script)}`, '/dev/null'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: opts.timeout ?? 60_000,
      maxBuffer: 256 * 1024 * 1024,
    });
    const out = Buffer.concat([r.stdout ?? Buffer.alloc(0), r.stderr ?? Buffer.alloc(0)]);
    return { status: r.status, bytes: out.length, text: out.toString('utf8') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
