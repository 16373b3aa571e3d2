import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './env.js';

/** Where `npm run bench` bundles bench/run.ts (package.json's bench:bundle). */
export const benchBundle = path.join(repoRoot, 'dist-bin/.work/bench.mjs');

/** The bench bundled as `npm run bench` does (esbuild, well under a second). */
export function bundleBench(): void {
  execFileSync('npm', ['run', '--silent', 'bench:bundle'], { cwd: repoRoot, stdio: 'inherit' });
}

/** One run of the bundled bench with an argument array. */
export function runBench(args: string[], timeoutMs = 20 * 60_000) {
  return spawnSync(process.execPath, [benchBundle, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 16 * 1024 * 1024,
  });
}
