import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir } from './env.js';

/** promtool as scripts/test-env.sh leaves it (test/.fixtures/promtool), else one on PATH. */
export function promtool(): string {
  const fixture = path.join(fixturesDir, 'promtool');
  if (fs.existsSync(fixture)) return fixture;
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(
    `promtool missing at ${fixture} and not on PATH: run 'sudo bash scripts/test-env.sh up' first`,
  );
}

/** `promtool ARGS` with `input` on stdin: exit status and everything it printed. */
export function runPromtool(args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync(promtool(), args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}
