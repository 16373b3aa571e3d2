import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the test suite finds what scripts/test-env.sh prepared. Tests that need Docker or the
 * Kubernetes source fail with the reason when it is missing; the only way to skip them is the
 * documented switch KF_SKIP_DOCKER_TESTS=1 (never set by CI).
 */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const fixturesDir = process.env.KF_TEST_FIXTURES ?? path.join(repoRoot, 'test/.fixtures');
export const goImage = process.env.KF_TEST_GO_IMAGE ?? 'local/golang:1.19.8';
export const k8sTarball = path.join(fixturesDir, 'kubernetes_1.20.5+really1.20.2.orig.tar.gz');
export const skipDockerTests = process.env.KF_SKIP_DOCKER_TESTS === '1';
export const cliPath = path.join(repoRoot, 'dist/cli.js');

/** Facts of Debian's kubernetes 1.20.2 source (shared/environment.md). */
export const k8s1202 = {
  gitVersion: 'v1.20.2',
  gitCommit: 'faecb196815e248d3ecfb03c680a4507229c2a56',
  goVersion: 'go1.15.5',
  versionJson: JSON.stringify({
    clientVersion: {
      major: '1',
      minor: '20',
      gitVersion: 'v1.20.2',
      gitCommit: 'faecb196815e248d3ecfb03c680a4507229c2a56',
      gitTreeState: 'clean',
      buildDate: '2021-01-13T13:25:59Z',
      goVersion: 'go1.15.5',
      compiler: 'gc',
      platform: 'linux/amd64',
    },
  }),
};

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (dist/cli.js) with an argument array. */
export function runCli(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {},
): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [cliPath, ...args], {
    encoding: 'utf8',
    input: opts.input,
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    timeout: opts.timeout ?? 25 * 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
