import path from 'node:path';
import { KfError } from '../errors.js';
import { connectDocker, ensureImage, ensureVolume, removeLeftovers, type ImageRef } from '../adapters/docker.js';
import { readBuildMode, readPatchSources, readTreeVersion } from '../adapters/source-tree.js';
import { computePatch } from '../core/patch.js';
import { assertBuildable, createBuildPlan } from '../core/plan.js';
import { formatPlatform } from '../core/version.js';
import type { BuildPlan, PatchResult, Platform, Validities, VersionInfo } from '../core/types.js';
import { buildInContainer } from './build.js';
import { discardBinary, extractBinary, goVersionOf, placeBinary } from './extract.js';
import { prepareSource, type SourceSpec } from './source.js';
import { verifyBinary, type VerifyReport } from './verify.js';

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
  /** the store stage (binary cache) plugs in here; absent: nothing is cached */
  store?: StoreStep;
}

/**
 * The seam for the store stage (the binary cache, another module): `save` receives every
 * binary that was built and passed verify (or could not be run here), already at its --out path.
 */
export interface StoreStep {
  save(plan: BuildPlan, binary: BuiltBinary, sourceIdentity: string | undefined): Promise<void>;
}

export interface BuiltBinary {
  platform: Platform;
  path: string;
  sha256: string;
  size: number;
  /** the Go that built it, from its build info */
  goVersion: string;
  verify: VerifyReport | { executed: false; reason: string; passed: false };
  /** true when it came out of the store instead of a container */
  cached: boolean;
}

export interface BuildResult {
  plan: BuildPlan;
  patch: PatchResult;
  image: ImageRef;
  source: string;
  binaries: BuiltBinary[];
}

/** Progress and log callbacks; the pipeline itself prints nothing. */
export interface BuildEvents {
  step?(text: string): void;
  line?(text: string): void;
  failureTail?(lines: string[]): void;
}

/** Where one platform's binary goes: `out` itself, or `out-os-arch` when building several. */
export function outputPath(out: string, platform: Platform, count: number): string {
  return count > 1 ? `${out}-${platform.os}-${platform.arch}` : out;
}

/**
 * build = resolve → plan → source → patch → build → extract → verify → store. `version` is
 * resolved by the caller; every other stage is one module, composed here and nothing else.
 */
export async function runBuildPipeline(req: BuildRequest, events: BuildEvents = {}): Promise<BuildResult> {
  const step = events.step ?? (() => undefined);
  step('connecting to the Docker engine');
  const docker = await connectDocker(req.env ?? process.env);
  await removeLeftovers(docker);

  step('preparing the source');
  const source = await prepareSource(req.source, { cacheDir: req.cacheDir });
  try {
    const buildMode = await readBuildMode(source.dir);
    const plan = createBuildPlan({
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
    const patch = computePatch(await readPatchSources(source.dir), req.validity, { kube });
    const overrides = new Map(patch.files.map((f) => [f.file, f.after] as const));

    step(`checking image ${plan.image}`);
    const image = await ensureImage(docker, plan.image, events.line);
    await ensureVolume(docker, req.goCacheVolume);

    const binaries: BuiltBinary[] = [];
    for (const platform of plan.platforms) {
      const out = path.resolve(outputPath(req.out, platform, plan.platforms.length));
      step(`building kubeadm ${plan.version.gitVersion} for ${formatPlatform(platform)} in ${plan.image}`);
      const extracted = await buildInContainer(
        {
          docker,
          plan,
          image: image.name,
          platform,
          sourceDir: source.dir,
          overrides,
          goCacheVolume: req.goCacheVolume,
          onLine: events.line,
          onFailure: events.failureTail,
          onSignal: () => source.dispose(),
        },
        async (container, file) => {
          step(`extracting ${path.basename(out)}`);
          return extractBinary(await container.getArchive(file), path.basename(file), out);
        },
      );
      try {
        let verify: BuiltBinary['verify'] = { executed: false, reason: 'skipped (--no-verify)', passed: false };
        if (req.verify) {
          step(`verifying ${path.basename(out)}`);
          verify = await verifyBinary({
            binary: extracted.tempPath,
            expected: { gitVersion: plan.version.gitVersion, gitCommit: plan.version.gitCommit },
            validity: req.validity,
            platform,
          });
          if (verify.executed && !verify.passed) {
            throw new VerifyError(verify);
          }
        }
        const goVersion = goVersionOf(extracted.tempPath);
        placeBinary(extracted);
        const built: BuiltBinary = { platform, path: out, sha256: extracted.sha256, size: extracted.size, goVersion, verify, cached: false };
        if (req.store) await req.store.save(plan, built, source.identity);
        binaries.push(built);
      } finally {
        discardBinary(extracted);
      }
    }
    return { plan, patch, image, source: source.description, binaries };
  } finally {
    await source.dispose();
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
