import {
  readBuildMode,
  readPatchInputs,
  readTreeVersion,
  treeOf,
  type TreeLike,
} from '../adapters/source-tree.js';
import { identifySource, type IdentifiedSource } from '../carry/cache/source-identity.js';
import { decideBuild, type BuildDecision, type TreeFacts } from '../core/build-decision.js';
import { assertBuildable, type BuildPlanInput } from '../core/plan.js';
import { selectBuildDate, type BuildDate } from '../core/reproducible.js';
import type { TreePatch, Platform, SourceSpec, Validities, VersionInfo } from '../core/types.js';
import { envBuildDate } from './provenance.js';
import { reporter, type Progress } from '../core/progress.js';
import { prepareSource, resolveSource, type PreparedSource } from './source.js';

/**
 * The preparation step, once per run, shared by `plan`, `build` and `audit` (`patch` reads its
 * tree with readTreeFacts and decides with core/build-decision.ts decidePatch): the source
 * resolved and identified (its walk or sha256 computed once and passed along), the tree read
 * when it is at hand (a directory), then the plan, the governing version and the patch from
 * core/build-decision.ts, and so the cache keys.
 *
 * A tarball or git tree is at hand only after the cache lookup (a hit must not unpack or check
 * out anything): its plan is made from the request, with the build mode inferred; settleOnTree
 * then reads the prepared tree and applies the same decision with the tree's facts. The source
 * identity fixes that tree, so the keys made before stay right.
 */

export interface PrepareRequest {
  version: VersionInfo;
  validity: Validities;
  /** empty: the version's own platform */
  platforms: Platform[];
  image?: string;
  /** absent: a plan without a source (plan with no source flag) */
  source?: SourceSpec;
  cacheDir: string;
  env: NodeJS.ProcessEnv;
  /** build and audit: refuse a plan that lacks what a build needs (commit, Go version) */
  buildable?: boolean;
  /** where the one pass over a tarball shows (its step and how far it is) */
  events?: Progress;
}

export interface Preparation extends BuildDecision {
  source?: IdentifiedSource;
  /** the tree's facts, when it was at hand (a directory source) */
  tree?: TreeFacts;
  /** what the plan was made from */
  input: BuildPlanInput;
  /** the buildDate, when it is known before the source is prepared (SOURCE_DATE_EPOCH, a directory's newest file) */
  date?: BuildDate;
}

/** What a tree says: build mode (required for a build), newest changelog, the patch inputs. */
export async function readTreeFacts(root: TreeLike, opts: { buildMode: boolean }): Promise<TreeFacts> {
  const tree = await treeOf(root);
  const buildMode = opts.buildMode ? await readBuildMode(tree) : undefined;
  const kube = await readTreeVersion(tree);
  const inputs = await readPatchInputs(tree, buildMode);
  return { buildMode, kube, files: inputs.files, clientGoCertFile: inputs.clientGoCertFile };
}

export async function prepareBuild(req: PrepareRequest): Promise<Preparation> {
  // every local path resolved, and an empty or missing tree refused, before anything reads it
  const spec = req.source && (await resolveSource(req.source));
  const source =
    spec &&
    (await identifySource(spec, { given: req.source, memoDir: req.cacheDir, ...tarballEvents(req.events) }));
  const tree = spec?.kind === 'dir' ? await readTreeFacts(spec.dir, { buildMode: true }) : undefined;
  const sourceDateEpoch = req.env.SOURCE_DATE_EPOCH;
  // reproducible: buildDate from SOURCE_DATE_EPOCH or the source itself, never the clock
  const date = source?.scan
    ? selectBuildDate({
        sourceDateEpoch,
        sourceTime: source.scan.newestFile,
        sourceOrigin: 'newest file in the directory',
      })
    : undefined;
  const input: BuildPlanInput = {
    version: req.version,
    validity: req.validity,
    platforms: req.platforms,
    source: source?.identity,
    image: req.image,
    // a tarball's or commit's own time is fixed by its identity; SOURCE_DATE_EPOCH is not
    buildDate: date?.buildDate ?? envBuildDate(req.env),
  };
  const decision = decideBuild(input, tree);
  if (req.buildable) assertBuildable(decision.plan);
  return { ...decision, source, tree, input, date };
}

/** The step and progress of a tarball's one pass. */
export function tarballEvents(events: Progress = {}) {
  const { step, progress } = reporter(events);
  const mb = (n: number) => (n / 2 ** 20).toFixed(1);
  return {
    onTarballRead: (file: string) =>
      step(`reading source tarball ${file} (one pass: its sha256 and the files a build needs)`),
    onTarballProgress: (bytes: number, total: number) => progress(`${mb(bytes)}/${mb(total)} MB`),
  };
}

/**
 * The decision for the prepared tree: the preparation's own when the tree was read then (a
 * directory), else the same decision made again with the tree's facts and the source's time.
 */
export async function settleOnTree(
  prep: Preparation & { buildable?: boolean },
  source: PreparedSource,
  env: NodeJS.ProcessEnv,
): Promise<BuildDecision & { date: BuildDate; tree: TreeFacts; patch: TreePatch }> {
  if (prep.tree && prep.date && prep.patch)
    return {
      plan: prep.plan,
      governing: prep.governing,
      patch: prep.patch,
      tree: prep.tree,
      date: prep.date,
    };
  const date = selectBuildDate({
    sourceDateEpoch: env.SOURCE_DATE_EPOCH,
    sourceTime: source.time,
    sourceOrigin: source.timeOrigin,
  });
  const tree = await readTreeFacts(source.tree, { buildMode: true });
  const decision = decideBuild({ ...prep.input, buildDate: date.buildDate }, tree);
  if (prep.buildable !== false) assertBuildable(decision.plan);
  return { ...decision, patch: decision.patch!, tree, date };
}

/**
 * `plan`'s preparation: build's, plus the tree of a tarball read as build would read it after a
 * miss (streamed, never unpacked), so plan shows the same build mode and patch, or the same
 * refusal. Its cache key stays the one build looks up (made before the tree is read).
 * A git source's tree is not fetched for a plan.
 */
export async function prepareForPlan(req: PrepareRequest): Promise<Preparation> {
  const prep = await prepareBuild(req);
  if (!prep.source || prep.tree || prep.source.spec.kind !== 'tarball') return prep;
  const source = await prepareSource(prep.source, { cacheDir: req.cacheDir, ...tarballEvents(req.events) });
  try {
    const settled = await settleOnTree({ ...prep, buildable: false }, source, req.env);
    return { ...prep, ...settled, plan: { ...settled.plan, cacheKey: prep.plan.cacheKey } };
  } finally {
    await source.dispose();
  }
}
