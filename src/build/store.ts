import path from 'node:path';
import type { BuildCache } from '../carry/cache/build-cache.js';
import {
  describeVerification,
  type BuildProvenance,
  type CacheManifest,
  type Verification,
} from '../core/cache-manifest.js';
import type { Preparation } from './prepare.js';
import { formatPlatform } from '../core/platform.js';
import type { BuildPlan, TreePatch, Platform } from '../core/types.js';
import type { ImageRef } from '../adapters/docker.js';
import { outputPath, type BuildRequest, type BuildPipelineResult, type BuiltBinary } from './types.js';

/**
 * store: the binary cache around the build. First half (before the source, the engine or any
 * container): keys from the preparation's plan (build/prepare.ts), hits copied to --out. Second
 * half (after verify): the new binary stored with its manifest.
 *
 * For a tarball or git source that plan was made before its tree was read (build mode
 * inferred); every input that changes the binary is still in the keys: the source identity
 * fixes the tree, and the tree fixes the rest.
 */
export interface CacheKeys {
  cache: BuildCache;
  /** the preparation's plan */
  plan: BuildPlan;
  identity: string | undefined;
  /** per platform ("os/arch") */
  keys: Map<string, string>;
  /** manifests of the hits, per platform */
  manifests: Map<string, CacheManifest>;
}

export function cacheKeys(prep: Preparation, cache: BuildCache): CacheKeys {
  const identity = prep.source?.identity;
  const keys = new Map(
    prep.plan.platforms.map((p) => [formatPlatform(p), cache.keyOf(prep.plan, p, identity)] as const),
  );
  return { cache, plan: prep.plan, identity, keys, manifests: new Map() };
}

/** Copies every hit not found yet to its --out path (sha256 checked); corrupt entries are reported and rebuilt. */
export async function fetchHits(
  req: BuildRequest,
  keyed: CacheKeys,
  hits: Map<string, BuiltBinary>,
): Promise<void> {
  for (const platform of keyed.plan.platforms) {
    const name = formatPlatform(platform);
    if (hits.has(name)) continue;
    const out = path.resolve(outputPath(req.out, platform, keyed.plan.platforms.length));
    const entry = await keyed.cache.fetch(keyed.keys.get(name)!, platform, out);
    if (!entry) continue;
    const m = entry.manifest;
    keyed.manifests.set(name, m);
    hits.set(name, {
      platform,
      path: out,
      sha256: m.sha256,
      size: m.size,
      goVersion: m.goVersion,
      verify: {
        executed: false,
        execution: 'not executed',
        reason: `from the binary cache (${describeVerification(m.verification)} when it was built ${m.created})`,
        passed: false,
      },
      cached: true,
      manifest: path.join(entry.dir, 'manifest.json'),
    });
  }
}

export function cachedResult(keyed: CacheKeys, hits: Map<string, BuiltBinary>): BuildPipelineResult {
  const binaries = keyed.plan.platforms.map((p) => hits.get(formatPlatform(p))!);
  const manifest = keyed.manifests.get(formatPlatform(binaries[0]!.platform))!;
  return {
    plan: keyed.plan,
    patch: { files: [], diff: manifest.patches, changes: [] },
    image: { name: manifest.image, id: manifest.imageId },
    source: 'the binary cache',
    binaries,
  };
}

/** Stores a verified binary under its platform's key; returns the path of its manifest.json. */
export async function storeBuilt(
  keyed: CacheKeys,
  b: {
    plan: BuildPlan;
    platform: Platform;
    binary: string;
    goVersion: string;
    image: ImageRef;
    patch: TreePatch;
    provenance?: BuildProvenance;
    verification?: Verification;
  },
): Promise<string> {
  const entry = await keyed.cache.save({
    key: keyed.keys.get(formatPlatform(b.platform))!,
    plan: b.plan,
    platform: b.platform,
    source: keyed.identity,
    binary: b.binary,
    goVersion: b.goVersion,
    image: b.image,
    patchDiff: b.patch.diff,
    provenance: b.provenance,
    verification: b.verification,
  });
  return path.join(entry.dir, 'manifest.json');
}
