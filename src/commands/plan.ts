import { prepareForPlan } from '../build/prepare.js';
import type { BuildPlan, TreePatch } from '../core/types.js';
import { describeValidity } from '../core/validity.js';
import { formatPlatform } from '../core/platform.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runFunction } from './run.js';
import { reporter } from '../core/progress.js';
import type { CompletedTarget } from '../build/resolve.js';
import type { CommandIo } from '../core/command-io.js';
import type { BuildMode } from '../core/types.js';
import {
  completeTargetFromSource,
  resolvePlatforms,
  resolveTarget,
  withSourceOptions,
  withTargetOptions,
  type SourceArgs,
  type TargetArgs,
} from './target-options.js';
import { resolveValidities, withValidityOptions, type ValidityArgs } from './validity-options.js';

type Resolved = CompletedTarget['resolved'];

/** What `plan` is asked: the target, validity and (optional) source flags, the cache dir. */
export type PlanInput = TargetArgs & Partial<ValidityArgs> & SourceArgs & { cacheDir: string };

/** The `plan --json` document: the plan plus, with a source, the patch. */
export interface PlanResult {
  gitVersion: string;
  gitCommit: string | null;
  goVersion: string | null;
  image: string | null;
  platforms: string[];
  buildMode: BuildMode;
  buildModeSource: BuildPlan['buildModeSource'];
  ldflags: string;
  env: BuildPlan['env'];
  goFlags: string[];
  package: string;
  containerSourceDir: string;
  validity: BuildPlan['validity'];
  cacheKey: string;
  /** what --kubernetes-version alone left open, found in the source (null: given or unknown) */
  resolved: {
    gitCommit: Resolved['gitCommit'] | null;
    goVersion: Resolved['goVersion'] | null;
  };
  patches: {
    files: { file: string; targets: string[] }[];
    changes: TreePatch['changes'];
    diff: string;
  } | null;
  notes: string[];
}

/** The `plan --json` document: the plan plus, with a source, the patch. */
export function planDocument(
  plan: BuildPlan,
  patch: TreePatch | undefined,
  resolved: Resolved = {},
): PlanResult {
  return {
    gitVersion: plan.version.gitVersion,
    gitCommit: plan.version.gitCommit || null,
    goVersion: plan.version.goVersion || null,
    image: plan.image || null,
    platforms: plan.platforms.map(formatPlatform),
    buildMode: plan.buildMode,
    buildModeSource: plan.buildModeSource,
    ldflags: plan.ldflags,
    env: plan.env,
    goFlags: plan.goFlags,
    package: plan.package,
    containerSourceDir: plan.containerSourceDir,
    validity: plan.validity,
    cacheKey: plan.cacheKey,
    // what --kubernetes-version alone left open, found in the source (null: given or unknown)
    resolved: { gitCommit: resolved.gitCommit ?? null, goVersion: resolved.goVersion ?? null },
    patches: patch
      ? {
          files: patch.files.map((f) => ({ file: f.file, targets: f.targets })),
          changes: patch.changes,
          diff: patch.diff,
        }
      : null,
    notes: plan.notes,
  };
}

/** Human text of a plan, one fact per line (`verbose`: the ldflags in full). */
export function formatPlanResult(r: PlanResult, verbose = false): string {
  const envText = Object.entries(r.env)
    .map(([k, val]) => `${k}=${val}`)
    .join(' ');
  const lines = [
    `kubeadm     ${r.gitVersion}`,
    `commit      ${r.gitCommit || '(unknown: build needs --commit)'}${r.resolved.gitCommit ? ` (resolved from ${r.resolved.gitCommit.from})` : ''}`,
    `go          ${r.goVersion || '(unknown: build needs --go-version)'}${r.resolved.goVersion ? ` (resolved from ${r.resolved.goVersion.from})` : ''}`,
    `image       ${r.image || '(none: Go version unknown)'}`,
    `platforms   ${r.platforms.join(', ')}`,
    `build mode  ${r.buildMode} (${r.buildModeSource === 'tree' ? 'read from hack/lib/init.sh' : 'inferred from the version'})`,
    `validity    leaf ${describeValidity(r.validity.leaf)}, CA ${describeValidity(r.validity.ca)}`,
    `build       ${envText} go build ${r.goFlags.join(' ')} ${r.package}`,
    `ldflags     ${verbose ? r.ldflags : `${r.ldflags.split(' -X ').length - 1} -X version flags (--verbose or --json shows them)`}`,
    `cache key   ${r.cacheKey}`,
  ];
  if (r.notes.length > 0) lines.push('notes:', ...r.notes.map((n) => `  - ${n}`));
  if (r.patches) {
    if (r.patches.diff) lines.push('patch:', r.patches.diff.trimEnd());
    else lines.push('patch:      none needed: the tree already has these validities');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `plan`: everything build would do, without Docker. A source named in the input also completes
 * a --kubernetes-version target (commit, Go version) and adds the patch.
 */
export async function runPlan(input: PlanInput, io: CommandIo): Promise<PlanResult> {
  const out = reporter(io.progress);
  const validity = resolveValidities(input);
  const platforms = resolvePlatforms(input);
  out.step('reading the kubeadm version');
  const { version, resolved, source, named } = await completeTargetFromSource(
    input,
    await resolveTarget(input, io),
    out,
    { named: true },
  );
  if (input.sourceDir !== undefined || input.sourceTarball !== undefined)
    out.step(`reading the source tree ${input.sourceDir ?? input.sourceTarball}`);
  // the same preparation as build's: what plan shows is what build would do, or its refusal
  const { plan, patch } = await prepareForPlan({
    version,
    validity,
    platforms,
    source: named ? source : undefined,
    cacheDir: input.cacheDir,
    env: io.env,
    events: io.progress,
  });
  return planDocument(plan, patch, resolved);
}

const command = defineCommand({
  ...commandSummaries.plan,
  builder: (y) => withSourceOptions(withValidityOptions(withTargetOptions(y))),
  handler: (argv) =>
    runFunction(argv, (io) => runPlan(argv, io), { human: (r) => formatPlanResult(r, argv.verbose) }),
});
export default command;
