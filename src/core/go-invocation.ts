import type { BuildPlan, Platform } from './types.js';

/** The Go build cache volume used unless --go-cache-volume names another. */
export const DEFAULT_GO_CACHE_VOLUME = 'kubeadm-forever-gocache';

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
