import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
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
/** Debian's golang-1.22-go and -src .debs (bookworm-backports), downloaded by scripts/test-env.sh. */
export const goDebsDir = path.join(fixturesDir, 'go-debs');

/**
 * The Go version of the golang-1.22-go .deb test-env downloaded (e.g. 1.22.12): test-env made
 * the image golang:<it>-alpine from it with the tool's image command.
 */
export function go122Version(): string {
  const deb = fs.existsSync(goDebsDir)
    ? fs.readdirSync(goDebsDir).find((f) => /^golang-1\.22-go_1\.22\.\d+/.test(f))
    : undefined;
  if (!deb)
    throw new Error(
      `Debian's golang-1.22-go .deb missing in ${goDebsDir}: run 'sudo bash scripts/test-env.sh up' first`,
    );
  return /^golang-1\.22-go_(1\.22\.\d+)/.exec(deb)![1]!;
}

export const skipDockerTests = process.env.KF_SKIP_DOCKER_TESTS === '1';
export const cliPath = path.join(repoRoot, 'dist/cli.js');

/**
 * `kubeadm version -o json` of Debian's kubernetes 1.20.2 source (gitVersion v1.20.2, gitCommit faecb196, Go 1.15.5); the
 * bench reads the same file.
 */
export const k8s1202VersionFile = path.join(repoRoot, 'test/fixtures/kubeadm-version-v1.20.2.json');
const k8s1202Version = JSON.parse(fs.readFileSync(k8s1202VersionFile, 'utf8')) as {
  clientVersion: Record<string, string>;
};

/** Facts of Debian's kubernetes 1.20.2 source. */
export const k8s1202 = {
  gitVersion: k8s1202Version.clientVersion.gitVersion!,
  gitCommit: k8s1202Version.clientVersion.gitCommit!,
  goVersion: k8s1202Version.clientVersion.goVersion!,
  versionJson: JSON.stringify(k8s1202Version),
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
