import fs from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { KfError } from '../core/errors.js';
import { onInterrupt } from '../adapters/interrupt.js';
import { reporter, type Progress } from '../core/progress.js';
import { treePackageClosure } from '../adapters/package-closure.js';
import { formatPlatform } from '../core/platform.js';
import type { Verification } from '../core/cache-manifest.js';
import type { BuildPlan, TreePatch, Platform, VersionInfo } from '../core/types.js';
import type { BuildDate } from '../core/reproducible.js';
import type { ImageRef } from '../adapters/docker.js';
import { buildProvenance } from './provenance.js';
import { discardBinary, extractBinary, goVersionOf, placeBinary } from './extract.js';
import {
  filledDigest,
  overlayFiles,
  sourceContentId,
  SOURCE_VOLUME_LABEL,
  sourceVolumeName,
} from '../core/source-volume.js';
import { selectionEntries } from '../carry/cache/source-identity.js';
import { makeSourceWorkDir, prepareSource, type PreparedSource } from './source.js';
import { prepareBuild, settleOnTree, tarballEvents, type Preparation } from './prepare.js';
import type { SourceVolumeUse } from './build.js';
import { EXTRA_VERSION_FIELDS, verifyBinary, type VerifyReport } from './verify.js';
import { assertMachine } from '../carry/cache/build-cache.js';
import { cachedResult, cacheKeys, fetchHits, storeBuilt, type CacheKeys } from './store.js';

import { assertOutputFile } from '../adapters/fs.js';
import { outputPath, type BuildRequest, type BuildPipelineResult, type BuiltBinary } from './types.js';

export type { BuildRequest, BuildPipelineResult, BuiltBinary } from './types.js';
export { outputPath } from './types.js';

/**
 * build = resolve → plan → source → patch → build → extract → verify → store. `version` is
 * resolved by the caller; the preparation (build/prepare.ts) resolves and identifies the
 * source and makes the plan and the keys once; every other stage is one module, composed here
 * and nothing else.
 */
export async function runBuildPipeline(
  req: BuildRequest,
  events: Progress = {},
): Promise<BuildPipelineResult> {
  const { step } = reporter(events);
  const prep = await prepareBuild({ ...req, env: req.env ?? process.env, buildable: true, events });
  // every output path is checked before the cache, the engine or a container writes anything
  for (const p of prep.plan.platforms)
    assertOutputFile(outputPath(req.out, p, prep.plan.platforms.length), {
      flag: '--out',
      example: './kubeadm',
    });
  // store, first half: keys from the preparation alone, so a hit needs no source, engine or container
  const keyed = req.cache ? cacheKeys(prep, req.cache) : undefined;
  const hits = new Map<string, BuiltBinary>();
  if (keyed && !req.noCache) {
    step('looking up the binary cache');
    await fetchHits(req, keyed, hits);
    if (hits.size === keyed.plan.platforms.length) return cachedResult(keyed, hits);
  }
  if (!keyed) return buildAll(req, prep, events, undefined, hits);
  // concurrent builds of the same key: the second waits here, then finds the first one's result
  return keyed.cache.withLocks([...keyed.keys.values()], async () => {
    if (!req.noCache) await fetchHits(req, keyed, hits);
    if (hits.size === keyed.plan.platforms.length) return cachedResult(keyed, hits);
    return buildAll(req, prep, events, keyed, hits);
  });
}

/** What every platform's build of one run shares: the engine, the plan, the patched tree. */
interface PlatformBuild {
  req: BuildRequest;
  events: Progress;
  keyed: CacheKeys | undefined;
  docker: Docker;
  image: ImageRef;
  plan: BuildPlan;
  patch: TreePatch;
  date: BuildDate;
  source: PreparedSource;
  overlay: Map<string, string>;
  sourceVolume: SourceVolumeUse | undefined;
}

/** The stages after the cache: source, patch, then each platform not found in the cache. */
async function buildAll(
  req: BuildRequest,
  prep: Preparation,
  events: Progress,
  keyed: CacheKeys | undefined,
  hits: Map<string, BuiltBinary>,
): Promise<BuildPipelineResult> {
  const { step } = reporter(events);
  step('connecting to the Docker engine');
  // loaded here, not at the top: a cache hit never needs dockerode (start-up time of a hit)
  const { connectDocker, ensureImage, ensureVolume, removeLeftovers } = await import('../adapters/docker.js');
  const docker = await connectDocker(req.env ?? process.env);
  await removeLeftovers(docker);

  step('preparing the source');
  // Ctrl-C at any point removes the temp tree (after the build container, when one runs)
  const workDir = makeSourceWorkDir();
  const removeTree = () => fs.rmSync(workDir, { recursive: true, force: true });
  const unregisterTree = onInterrupt({ next: 'run the build again; nothing was written', run: removeTree });
  let source: PreparedSource | undefined;
  try {
    source = await prepareSource(prep.source!, { cacheDir: req.cacheDir, workDir, ...tarballEvents(events) });
    // a directory's tree was read by the preparation; a tarball's or commit's only now
    step('patching the validity constants');
    const { plan, patch, date, tree } = await settleOnTree(prep, source, req.env ?? process.env);
    const overlay = overlayFiles(tree.files, patch);

    step(`checking image ${plan.image}`);
    const image = await ensureImage(docker, plan.image, events);
    await ensureVolume(docker, req.goCacheVolume);
    const sourceVolume = await sourceVolumeOf(req, events, plan, source, prep, overlay, (name, labels) =>
      ensureVolume(docker, name, {
        what: 'the source volume',
        next: 'check free space and the engine, or pass --no-source-volume to stream the tree into each build',
        labels,
      }),
    );

    const shared: PlatformBuild = {
      req,
      events,
      keyed,
      docker,
      image,
      plan,
      patch,
      date,
      source,
      overlay,
      sourceVolume,
    };
    const binaries: BuiltBinary[] = [];
    for (const platform of plan.platforms)
      binaries.push(hits.get(formatPlatform(platform)) ?? (await buildPlatform(shared, platform)));
    return { plan, patch, image, source: source.description, binaries };
  } finally {
    unregisterTree();
    await source?.dispose();
    removeTree();
  }
}

/**
 * The per-source volume the builds mount, or undefined (--no-source-volume). What it must hold
 * is computed on every build: the marker is checked against it before reuse, so a volume filled
 * with other files (another selection, another tree) is never built from.
 */
async function sourceVolumeOf(
  req: BuildRequest,
  events: Progress,
  plan: BuildPlan,
  source: PreparedSource,
  prep: Preparation,
  overlay: Map<string, string>,
  ensure: (name: string, labels: Record<string, string>) => Promise<unknown>,
): Promise<SourceVolumeUse | undefined> {
  if (req.sourceVolume === false) return undefined;
  const { step } = reporter(events);
  const contentId = sourceContentId(source.provenance, plan.package);
  const name = sourceVolumeName(contentId);
  const closure = treePackageClosure(source.tree, plan.buildMode, plan.package);
  const selection = { ...closure, files: [...new Set([...closure.files, ...overlay.keys()])].sort() };
  const filesDigest = filledDigest(selectionEntries(source.tree, selection, prep.source?.scan));
  await ensure(name, { [SOURCE_VOLUME_LABEL]: contentId });
  return {
    name,
    contentId,
    selection,
    filesDigest,
    onFill: () => step(`filling source volume ${name} (once per source)`),
    onWait: (holder) =>
      events.info?.(
        `another build of the same source holds volume ${name} (container ${holder}); waiting for it`,
      ),
  };
}

/** One platform: build in a container → extract → check the machine → verify → place → store. */
async function buildPlatform(b: PlatformBuild, platform: Platform): Promise<BuiltBinary> {
  const { req, events, plan } = b;
  const { step } = reporter(events);
  const { buildInContainer } = await import('./build.js');
  const out = path.resolve(outputPath(req.out, platform, plan.platforms.length));
  step(`building kubeadm ${plan.version.gitVersion} for ${formatPlatform(platform)} in ${plan.image}`);
  const extracted = await buildInContainer(
    {
      docker: b.docker,
      plan,
      image: b.image.name,
      platform,
      source: b.source,
      overlay: b.overlay,
      sourceVolume: b.sourceVolume,
      goCacheVolume: req.goCacheVolume,
      progress: events,
      goVerbose: req.goVerbose,
      onCompile: () => step(`compiling kubeadm ${plan.version.gitVersion} for ${formatPlatform(platform)}`),
    },
    async (container, file) => {
      step(`extracting ${path.basename(out)}`);
      return extractBinary(await container.getArchive(file), path.basename(file), out);
    },
  );
  const unregisterBinary = onInterrupt({ run: () => discardBinary(extracted) });
  try {
    // a binary of another machine than asked for is never placed, verified or stored
    await assertMachine(extracted.tempPath, platform);
    let verify: BuiltBinary['verify'] = {
      executed: false,
      execution: 'not executed',
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
        emulator: req.emulator,
      });
      if (verify.executed && !verify.passed) throw new VerifyError(verify);
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
    if (b.keyed) {
      step(`storing ${formatPlatform(platform)} in the binary cache`);
      const provenance = buildProvenance({
        plan,
        platform,
        source: b.source.provenance,
        date: b.date,
        goVersion,
      });
      built.manifest = await storeBuilt(b.keyed, {
        plan,
        platform,
        binary: out,
        goVersion,
        image: b.image,
        patch: b.patch,
        provenance,
        verification: verificationOf(verify),
      });
    }
    return built;
  } finally {
    unregisterBinary();
    discardBinary(extracted);
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

/** How a stored binary was verified, for its manifest. */
export function verificationOf(v: BuiltBinary['verify']): Verification {
  if (!v.executed) return { how: 'not executed', reason: v.reason };
  return {
    how: v.execution === 'emulated' ? 'emulated' : 'native',
    ...(v.emulator ? { emulator: v.emulator } : {}),
    ...(v.seconds !== undefined ? { seconds: v.seconds } : {}),
    passed: v.passed,
  };
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
