import fs from 'node:fs';
import path from 'node:path';
import { KfError } from '../core/errors.js';
import { readBuildMode, readPatchInputs, readTreeVersion } from '../adapters/source-tree.js';
import { packageClosure, type SourceSelection } from '../adapters/package-closure.js';
import { computePatch } from '../core/patch.js';
import { assertBuildable, createBuildPlan } from '../core/plan.js';
import { formatPlatform } from '../core/platform.js';
import type { VersionInfo } from '../core/types.js';
import { buildProvenance } from './provenance.js';
import { selectBuildDate } from '../core/reproducible.js';
import { discardBinary, extractBinary, goVersionOf, placeBinary } from './extract.js';
import {
  filledDigest,
  overlayFiles,
  sourceContentId,
  SOURCE_VOLUME_LABEL,
  sourceVolumeName,
} from '../core/source-volume.js';
import { selectionEntries } from '../carry/cache/source-identity.js';
import { makeSourceWorkDir, prepareSource, resolveSource, type PreparedSource } from './source.js';
import { EXTRA_VERSION_FIELDS, verifyBinary, type VerifyReport } from './verify.js';
import { assertMachine } from '../carry/cache/build-cache.js';
import { cachedResult, cacheKeys, fetchHits, storeBuilt, type CacheKeys } from './store.js';

import {
  outputPath,
  type BuildEvents,
  type BuildRequest,
  type BuildResult,
  type BuiltBinary,
} from './types.js';

export type { BuildEvents, BuildRequest, BuildResult, BuiltBinary } from './types.js';
export { outputPath } from './types.js';

/**
 * build = resolve → plan → source → patch → build → extract → verify → store. `version` is
 * resolved by the caller; every other stage is one module, composed here and nothing else.
 */
export async function runBuildPipeline(given: BuildRequest, events: BuildEvents = {}): Promise<BuildResult> {
  const step = events.step ?? (() => undefined);
  // every local path of the source resolved, and an empty or missing tree refused, before
  // anything reads it or a key is computed
  const req = { ...given, source: await resolveSource(given.source) };
  // store, first half: keys from the request alone, so a hit needs no source, engine or container
  const keyed = req.cache ? await cacheKeys(req, req.cache) : undefined;
  const hits = new Map<string, BuiltBinary>();
  if (keyed && !req.noCache) {
    step('looking up the binary cache');
    await fetchHits(req, keyed, hits);
    if (hits.size === keyed.plan.platforms.length) return cachedResult(keyed, hits);
  }
  if (!keyed) return buildAll(req, events, undefined, hits);
  // concurrent builds of the same key: the second waits here, then finds the first one's result
  return keyed.cache.withLocks([...keyed.keys.values()], async () => {
    if (!req.noCache) await fetchHits(req, keyed, hits);
    if (hits.size === keyed.plan.platforms.length) return cachedResult(keyed, hits);
    return buildAll(req, events, keyed, hits);
  });
}

/** The stages after the cache: source, patch, build, extract, verify, then the store's second half. */
async function buildAll(
  req: BuildRequest,
  events: BuildEvents,
  keyed: CacheKeys | undefined,
  hits: Map<string, BuiltBinary>,
): Promise<BuildResult> {
  const step = events.step ?? (() => undefined);
  step('connecting to the Docker engine');
  // loaded here, not at the top: a cache hit never needs dockerode (start-up time of a hit)
  const { connectDocker, ensureImage, ensureVolume, removeLeftovers } = await import('../adapters/docker.js');
  const { buildInContainer } = await import('./build.js');
  const docker = await connectDocker(req.env ?? process.env);
  await removeLeftovers(docker);

  step('preparing the source');
  // Ctrl-C outside the container phase (unpacking, patching, verifying) removes the temp tree
  // too; inside it, the container's own handler removes container and tree.
  const workDir = makeSourceWorkDir();
  const interrupt = new InterruptCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  interrupt.arm();
  let source: PreparedSource | undefined;
  try {
    source = await prepareSource(req.source, { cacheDir: req.cacheDir, workDir, scan: keyed?.scan });
    const buildMode = await readBuildMode(source.dir);
    // reproducible: buildDate from SOURCE_DATE_EPOCH or the source itself, never the clock
    const date = selectBuildDate({
      sourceDateEpoch: (req.env ?? process.env).SOURCE_DATE_EPOCH,
      sourceTime: source.time,
      sourceOrigin: source.timeOrigin,
    });
    const plan = createBuildPlan({
      buildDate: date.buildDate,
      version: req.version,
      validity: req.validity,
      platforms: req.platforms,
      buildMode: { mode: buildMode, source: 'tree' },
      source: source.identity,
      image: req.image,
    });
    assertBuildable(plan);

    step('patching the validity constants');
    const kube = (await readTreeVersion(source.dir)) ?? plan.kube;
    const inputs = await readPatchInputs(source.dir, buildMode);
    const patch = computePatch(inputs.files, req.validity, {
      kube,
      clientGoCertFile: inputs.clientGoCertFile,
    });
    const overlay = overlayFiles(inputs.files, patch);

    step(`checking image ${plan.image}`);
    const image = await ensureImage(docker, plan.image, events.line);
    await ensureVolume(docker, req.goCacheVolume);
    const sourceDir = source.dir;
    const contentId = sourceContentId(source.provenance, plan.package);
    const volume = req.sourceVolume === false ? undefined : sourceVolumeName(contentId);
    let filling: { selection: SourceSelection; filesDigest: string } | undefined;
    if (volume) {
      // what the volume must hold, computed on every build: the marker is checked against it
      // before reuse, so a volume filled with other files (another selection, another tree) is
      // never built from
      const closure = packageClosure(sourceDir, plan.buildMode, plan.package);
      const selection = { ...closure, files: [...new Set([...closure.files, ...overlay.keys()])].sort() };
      filling = { selection, filesDigest: filledDigest(selectionEntries(sourceDir, selection, keyed?.scan)) };
      await ensureVolume(docker, volume, {
        what: 'the source volume',
        next: 'check free space and the engine, or pass --no-source-volume to stream the tree into each build',
        labels: { [SOURCE_VOLUME_LABEL]: contentId },
      });
    }

    const binaries: BuiltBinary[] = [];
    for (const platform of plan.platforms) {
      const hit = hits.get(formatPlatform(platform));
      if (hit) {
        binaries.push(hit);
        continue;
      }
      const out = path.resolve(outputPath(req.out, platform, plan.platforms.length));
      step(`building kubeadm ${plan.version.gitVersion} for ${formatPlatform(platform)} in ${plan.image}`);
      interrupt.disarm();
      const extracted = await buildInContainer(
        {
          docker,
          plan,
          image: image.name,
          platform,
          sourceDir,
          overlay,
          sourceVolume:
            volume && filling
              ? {
                  name: volume,
                  contentId,
                  ...filling,
                  onFill: () => step(`filling source volume ${volume} (once per source)`),
                  onWait: (holder) =>
                    events.waiting?.(
                      `another build of the same source holds volume ${volume} (container ${holder}); waiting for it`,
                    ),
                }
              : undefined,
          goCacheVolume: req.goCacheVolume,
          onLine: events.line,
          onFailure: events.failureTail,
          onSignal: async () => interrupt.cleanup(),
          goVerbose: req.goVerbose,
          onProgress: events.progress,
          onCompile: () =>
            step(`compiling kubeadm ${plan.version.gitVersion} for ${formatPlatform(platform)}`),
        },
        async (container, file) => {
          step(`extracting ${path.basename(out)}`);
          return extractBinary(await container.getArchive(file), path.basename(file), out);
        },
      );
      interrupt.arm(() => discardBinary(extracted));
      try {
        // a binary of another machine than asked for is never placed, verified or stored
        await assertMachine(extracted.tempPath, platform);
        let verify: BuiltBinary['verify'] = {
          executed: false,
          reason: 'skipped (--no-verify)',
          passed: false,
        };
        if (req.verify) {
          step(`verifying ${path.basename(out)}`);
          verify = await verifyBinary({
            binary: extracted.tempPath,
            expected: expectedVersion(plan.version),
            validity: req.validity,
            platform,
          });
          if (verify.executed && !verify.passed) {
            throw new VerifyError(verify);
          }
        }
        const goVersion = goVersionOf(extracted.tempPath);
        placeBinary(extracted);
        const built: BuiltBinary = {
          platform,
          path: out,
          sha256: extracted.sha256,
          size: extracted.size,
          goVersion,
          verify,
          cached: false,
        };
        // store, second half: only a binary that passed verify (or could not run here) is kept
        if (keyed) {
          step(`storing ${formatPlatform(platform)} in the binary cache`);
          const provenance = buildProvenance({ plan, platform, source: source.provenance, date, goVersion });
          built.manifest = await storeBuilt(keyed, {
            plan,
            platform,
            binary: out,
            goVersion,
            image,
            patch,
            provenance,
          });
        }
        binaries.push(built);
      } finally {
        discardBinary(extracted);
      }
    }
    return { plan, patch, image, source: source.description, binaries };
  } finally {
    interrupt.disarm();
    await source?.dispose();
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * What the built binary's `version -o json` must say: what the original said. major/minor are
 * always known (from the version itself when not reported); the 1.33+ emulation fields only
 * when the target's version output had them (kubeadm's own are empty: nothing sets them).
 */
export function expectedVersion(v: VersionInfo): NonNullable<Parameters<typeof verifyBinary>[0]['expected']> {
  const expected: NonNullable<Parameters<typeof verifyBinary>[0]['expected']> = {
    gitVersion: v.gitVersion,
    gitCommit: v.gitCommit,
  };
  for (const key of EXTRA_VERSION_FIELDS) {
    const value = v[key];
    if (value !== undefined) expected[key] = value;
  }
  return expected;
}

/**
 * SIGINT/SIGTERM while armed: run the cleanups, print the two-line error, exit 130/143.
 * Disarmed while a build container runs (withBuildContainer has its own handler then).
 */
class InterruptCleanup {
  private extra: Array<() => void> = [];
  private readonly handler = (signal: NodeJS.Signals) => {
    process.stderr.write(
      `\nerror: interrupted by ${signal}\nnext: run the build again; nothing was written\n`,
    );
    this.cleanup();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor(private readonly base: () => void) {}

  arm(extra?: () => void): void {
    if (extra) this.extra.push(extra);
    this.disarm();
    process.once('SIGINT', this.handler);
    process.once('SIGTERM', this.handler);
  }

  disarm(): void {
    process.removeListener('SIGINT', this.handler);
    process.removeListener('SIGTERM', this.handler);
  }

  cleanup(): void {
    for (const fn of [...this.extra, this.base]) {
      try {
        fn();
      } catch {
        /* best effort while exiting */
      }
    }
  }
}

/** A built binary that did not pass verify: nothing was written at --out. */
export class VerifyError extends KfError {
  constructor(readonly report: VerifyReport) {
    const more = report.failures.length > 1 ? ` (and ${report.failures.length - 1} more)` : '';
    super(
      `the built kubeadm failed verification: ${report.failures[0] ?? 'unknown failure'}${more}`,
      'nothing was written at --out; check the patch (kubeadm-forever plan) and the version flags, or report it',
    );
  }
}
