import { inputDigests, platformCacheKey } from '../../core/plan.js';
import { formatPlatform } from '../../core/platform.js';
import type { BuildPlan, Platform } from '../../core/types.js';
import { KfError, messageOf } from '../../core/errors.js';
import { reporter, type Progress } from '../../core/progress.js';
import { TOOL_VERSION } from '../../adapters/tool-version.js';
import { checkMachine, readBinaryHead } from './elf.js';
import type { BuildProvenance, ManifestInput, Verification } from '../../core/cache-manifest.js';
import { BinaryCache, type CacheEntry } from './store.js';

/**
 * The store stage as the build pipeline sees it: a hit before any container exists, a save
 * after verify, and locks so that concurrent builds of one key build once.
 *
 *   const cache = new BuildCache(cacheDir, progress);   // warn: a corrupt entry moved aside; info: waiting for a lock
 *   const key = cache.keyOf(plan, platform, source.identity);
 *   const hit = await cache.fetch(key, platform, outPath);     // null: build it
 *   ...build, extract, verify...
 *   await cache.save({ key, plan, platform, binary: outPath, goVersion, image, patchDiff });
 *
 * Build all misses inside `withLocks(keys, ...)` and `fetch` again there first: another run
 * may have stored them while this one waited.
 */
export interface SavedBuild {
  key: string;
  plan: BuildPlan;
  platform: Platform;
  /** the source identity that went into the key ("tarball:sha256:...", or undefined for the commit) */
  source?: string;
  /** the verified binary */
  binary: string;
  /** the Go that built it (its build info), e.g. "go1.19.8" */
  goVersion: string;
  image: { name: string; id: string };
  /** the unified diff applied to the source */
  patchDiff: string;
  /** where the source came from, the build environment and arguments, what is reproducible */
  provenance?: BuildProvenance;
  /** how verify ran the binary before it was stored */
  verification?: Verification | undefined;
}

export class BuildCache {
  readonly store: BinaryCache;
  private readonly progress: Required<Progress>;

  constructor(cacheDir: string, progress: Progress = {}) {
    this.store = new BinaryCache(cacheDir);
    this.progress = reporter(progress);
  }

  /** One key per platform, so `--platform a,b` and `--platform a` share a's entry. */
  keyOf(plan: BuildPlan, platform: Platform, source: string | undefined): string {
    return platformCacheKey(plan, platform, source);
  }

  /** A sound entry copied to `out` (sha256 checked as it is copied), or null: build it. */
  async fetch(key: string, platform: Platform, out: string): Promise<CacheEntry | null> {
    let r;
    try {
      r = await this.store.fetchTo(key, platform, out);
    } catch (err) {
      throw new KfError(
        `cannot write the cached binary to ${out}: ${messageOf(err)}`,
        'check that the directory of --out exists and is writable, or pass another --out',
      );
    }
    if (r.kind === 'corrupt') {
      this.progress.warn(
        `cache entry ${key} (${formatPlatform(platform)}) is corrupt: ${r.reason}; moved to ${r.movedTo}, rebuilding`,
      );
      return null;
    }
    return r.kind === 'hit' ? r.entry : null;
  }

  async save(b: SavedBuild): Promise<CacheEntry> {
    return this.store.store(manifestFor(b), b.binary);
  }

  /** Holds the locks of `keys` (sorted, so two runs never wait on each other in a cycle). */
  async withLocks<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const lockAt = (i: number): Promise<T> =>
      i === sorted.length
        ? fn()
        : this.store.withKeyLock(sorted[i]!, () => lockAt(i + 1), {
            onWait: (h) =>
              this.progress.info(
                `another build of the same inputs is running (pid ${h.pid} on ${h.host}); waiting for it`,
              ),
          });
    return lockAt(0);
  }
}

/** The manifest of one built binary: the plan's inputs for its platform, and what it ran in. */
export function manifestFor(b: SavedBuild): ManifestInput {
  const { platforms: _platforms, notes: _notes, cacheKey: _cacheKey, ...planInputs } = b.plan;
  const inputs = { ...planInputs, platform: formatPlatform(b.platform), source: b.source ?? null };
  return {
    key: b.key,
    inputs,
    gitVersion: b.plan.version.gitVersion,
    gitCommit: b.plan.version.gitCommit,
    goVersion: b.goVersion,
    platform: formatPlatform(b.platform),
    validity: b.plan.validity.leaf,
    caValidity: b.plan.validity.ca,
    image: b.image.name,
    imageId: b.image.id,
    patches: b.patchDiff,
    toolVersion: TOOL_VERSION,
    ...(b.provenance
      ? { provenance: { ...b.provenance, inputDigests: inputDigests({ ...inputs, patches: b.patchDiff }) } }
      : {}),
    ...(b.verification ? { verification: b.verification } : {}),
  };
}

/**
 * Throws when a built binary is not for the machine its platform names (a wrong GOARCH, a
 * host binary picked up by mistake). A format this tool cannot parse passes: there is nothing
 * to compare.
 */
export async function assertMachine(file: string, platform: Platform): Promise<void> {
  const c = checkMachine(await readBinaryHead(file), platform);
  if (c.result === 'mismatch') {
    throw new KfError(
      `the binary built for ${formatPlatform(platform)} is ${c.reason}`,
      'check --platform and that the image can cross-compile (CGO_ENABLED=0); nothing was written at --out',
    );
  }
}
