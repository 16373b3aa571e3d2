import path from 'node:path';
import type { BuildCache } from '../carry/cache/build-cache.js';
import type { BuildProvenance, CacheManifest } from '../core/cache-manifest.js';
import { scanTree, sourceIdentity, type TreeScan } from '../carry/cache/source-identity.js';
import { assertBuildable, createBuildPlan } from '../core/plan.js';
import { envBuildDate } from './provenance.js';
import { formatPlatform } from '../core/platform.js';
import type { BuildPlan, PatchResult, Platform } from '../core/types.js';
import type { ImageRef } from '../adapters/docker.js';
import { outputPath, type BuildRequest, type BuildResult, type BuiltBinary } from './types.js';

/**
 * store: the binary cache around the build. First half (before the source, the engine or any
 * container): keys from the request alone, hits copied to --out. Second half (after verify):
 * the new binary stored with its manifest.
 *
 * The keys come from a plan of the request whose build mode is inferred (the tree is not read
 * yet); every input that changes the binary is still in them: the source identity fixes the
 * tree, and the tree fixes the rest.
 */
export interface CacheKeys {
  cache: BuildCache;
  /** the plan of the request (build mode inferred: the source is not prepared yet) */
  plan: BuildPlan;
  identity: string | undefined;
  /** a --source-dir's walk, reused by the source stage */
  scan?: TreeScan;
  /** per platform ("os/arch") */
  keys: Map<string, string>;
  /** manifests of the hits, per platform */
  manifests: Map<string, CacheManifest>;
}

export async function cacheKeys(req: BuildRequest, cache: BuildCache): Promise<CacheKeys> {
  // req.source is resolved (build/source.ts resolveSource): a directory by its real path
  const scan = req.source.kind === 'dir' ? scanTree(req.source.dir, { memoDir: req.cacheDir }) : undefined;
  const identity = await sourceIdentity(req.source, scan);
  const plan = createBuildPlan({
    // SOURCE_DATE_EPOCH changes the bytes, so it is part of the key; the source's own time is
    // fixed by the source identity already
    buildDate: envBuildDate(req.env ?? process.env),
    version: req.version,
    validity: req.validity,
    platforms: req.platforms,
    source: identity,
    image: req.image,
  });
  assertBuildable(plan);
  const keys = new Map(
    plan.platforms.map((p) => [formatPlatform(p), cache.keyOf(plan, p, identity)] as const),
  );
  return { cache, plan, identity, scan, keys, manifests: new Map() };
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
        reason: `from the binary cache (verified when it was built ${m.created})`,
        passed: false,
      },
      cached: true,
      manifest: path.join(entry.dir, 'manifest.json'),
    });
  }
}

export function cachedResult(keyed: CacheKeys, hits: Map<string, BuiltBinary>): BuildResult {
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
    patch: PatchResult;
    provenance?: BuildProvenance;
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
  });
  return path.join(entry.dir, 'manifest.json');
}
