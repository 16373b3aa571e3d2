import type Docker from 'dockerode';
import { packDirectory } from '../adapters/archive.js';
import { withBuildContainer, type BuildContainer } from '../adapters/docker.js';
import type { BuildPlan, Platform } from '../core/types.js';
import { KfError } from '../errors.js';

/** Mount point of the named Go build cache volume inside the build container. */
export const GO_CACHE_DIR = '/gocache';

export interface GoBuildInvocation {
  cmd: string[];
  env: Record<string, string>;
  workingDir: string;
  /** where the binary lands inside the container */
  output: string;
}

/** The `go build` of one platform, as an argument array (never a shell string). */
export function goBuildInvocation(plan: BuildPlan, platform: Platform): GoBuildInvocation {
  const output = `/kubeadm-forever-out/kubeadm-${platform.os}-${platform.arch}`;
  return {
    cmd: ['go', 'build', ...plan.goFlags, '-ldflags', plan.ldflags, '-o', output, plan.package],
    env: { ...plan.env, GOOS: platform.os, GOARCH: platform.arch, GOCACHE: GO_CACHE_DIR },
    workingDir: plan.containerSourceDir,
    output,
  };
}

export interface ContainerBuildInput {
  docker: Docker;
  plan: BuildPlan;
  /** the image to run (already present on the engine) */
  image: string;
  platform: Platform;
  /** the tree on this host */
  sourceDir: string;
  /** patched file contents by relative path, overlaid in the tar stream */
  overrides: ReadonlyMap<string, string>;
  goCacheVolume: string;
  /** each line of build output (for --verbose) */
  onLine?: (line: string) => void;
  /** the last lines of a failed build, before the error is thrown */
  onFailure?: (tail: string[]) => void;
  /** extra cleanup when SIGINT/SIGTERM arrives (temp trees) */
  onSignal?: () => Promise<void>;
}

/**
 * build: one container per platform from the plan's image; the tree goes in as a tar stream
 * at its GOPATH location (putArchive at "/", so no bind mount: a remote DOCKER_HOST works),
 * `go build` runs with the plan's env and flags, the Go cache lives in a named volume. `withBinary`
 * runs while the container still exists (to copy the binary out); the container is removed
 * afterwards in every case.
 */
export async function buildInContainer<T>(input: ContainerBuildInput, withBinary: (c: BuildContainer, path: string) => Promise<T>): Promise<T> {
  const go = goBuildInvocation(input.plan, input.platform);
  const spec = {
    image: input.image,
    cmd: go.cmd,
    env: go.env,
    workingDir: go.workingDir,
    volumes: { [input.goCacheVolume]: GO_CACHE_DIR },
  };
  return withBuildContainer(
    input.docker,
    spec,
    async (container) => {
      // The tree and the output directory travel in one archive (the image may lack both).
      const tar = packDirectory(input.sourceDir, {
        prefix: input.plan.containerSourceDir.replace(/^\//, ''),
        overrides: input.overrides,
        exclude: ['.git', '_output'],
        extraDirs: [go.output.slice(1, go.output.lastIndexOf('/'))],
      });
      await container.putArchive(tar, '/');
      const result = await container.run(input.onLine);
      if (result.exitCode !== 0) {
        input.onFailure?.(result.tail);
        const compilerLine = [...result.tail].reverse().find((l) => /\.go:\d+(:\d+)?: /.test(l));
        throw new KfError(
          `go build failed in ${input.image} (exit code ${result.exitCode})${compilerLine ? `: ${compilerLine.trim()}` : ''}`,
          'read the build output above (all of it with --verbose); a compile error usually means the source does not match the Go version or the patch',
        );
      }
      return withBinary(container, go.output);
    },
    input.onSignal,
  );
}
