import type { ImageRef } from '../adapters/docker.js';
import type { BuildCache } from '../carry/cache/build-cache.js';
import type { BuildPlan, TreePatch, Platform, Validities, VersionInfo } from '../core/types.js';
import type { SourceSpec } from '../core/types.js';
import type { VerifyReport } from './verify.js';

/** What the build pipeline is asked for and what it gives back (shared by its stages). */
export interface BuildRequest {
  /** resolve: the target version (from --kubeadm, --version-file or --kubernetes-version) */
  version: VersionInfo;
  validity: Validities;
  /** empty: the version's own platform */
  platforms: Platform[];
  /** replaces the plan's golang:<go>-alpine */
  image?: string;
  source: SourceSpec;
  /** --out: the binary (one platform) or the prefix of `<out>-<os>-<arch>` (several) */
  out: string;
  cacheDir: string;
  goCacheVolume: string;
  verify: boolean;
  env?: NodeJS.ProcessEnv;
  /** the store stage (binary cache): looked up before anything else, filled after verify; absent: no cache */
  cache?: BuildCache;
  /** --no-cache: build even when the cache has it (the result is still stored) */
  noCache?: boolean;
  /**
   * false (--no-source-volume, audit): stream the whole tree into each container instead of
   * keeping it in a per-source volume that later builds of the same source reuse
   */
  sourceVolume?: boolean;
  /** --verbose: the compiler names each package it compiles (go build -v) */
  goVerbose?: boolean;
  /** --emulator: what runs a foreign platform's binary in verify (a path, or "none"); default: found here */
  emulator?: string | undefined;
}

export interface BuiltBinary {
  platform: Platform;
  path: string;
  sha256: string;
  size: number;
  /** the Go that built it, from its build info */
  goVersion: string;
  verify: VerifyReport | NotVerified;
  /** true when it came out of the store instead of a container */
  cached: boolean;
  /** the cache entry's manifest.json (inputs, image id, patches, sha256), when cached or stored */
  manifest?: string;
}

/** A binary that was not run now: --no-verify, or a cache hit (verified when it was built). */
export interface NotVerified {
  executed: false;
  execution: 'not executed';
  reason: string;
  passed: false;
}

export interface BuildPipelineResult {
  plan: BuildPlan;
  patch: TreePatch;
  image: ImageRef;
  source: string;
  binaries: BuiltBinary[];
}

/** Where one platform's binary goes: `out` itself, or `out-os-arch` when building several. */
export function outputPath(out: string, platform: Platform, count: number): string {
  return count > 1 ? `${out}-${platform.os}-${platform.arch}` : out;
}
