import { prepareForPlan } from '../build/prepare.js';
import type { BuildPlan, PatchResult } from '../core/types.js';
import { describeValidity } from '../core/validity.js';
import { formatPlatform } from '../core/platform.js';
import { defineCommand } from './options.js';
import { commandSummaries } from './catalog.js';
import { runCommand } from './run.js';
import type { CompletedTarget } from '../build/resolve.js';
import {
  completeTargetFromSource,
  resolvePlatforms,
  resolveTarget,
  withSourceOptions,
  withTargetOptions,
} from './target-options.js';
import { resolveValidities, withValidityOptions } from './validity-options.js';

type Resolved = CompletedTarget['resolved'];

/** The `plan --json` document: the plan plus, with a source, the patch. */
export function planDocument(plan: BuildPlan, patch: PatchResult | undefined, resolved: Resolved = {}) {
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

/** Human text of a plan, one fact per line. */
export function planText(
  plan: BuildPlan,
  patch: PatchResult | undefined,
  verbose = false,
  resolved: Resolved = {},
): string {
  const v = plan.version;
  const envText = Object.entries(plan.env)
    .map(([k, val]) => `${k}=${val}`)
    .join(' ');
  const lines = [
    `kubeadm     ${v.gitVersion}`,
    `commit      ${v.gitCommit || '(unknown: build needs --commit)'}${resolved.gitCommit ? ` (resolved from ${resolved.gitCommit.from})` : ''}`,
    `go          ${v.goVersion || '(unknown: build needs --go-version)'}${resolved.goVersion ? ` (resolved from ${resolved.goVersion.from})` : ''}`,
    `image       ${plan.image || '(none: Go version unknown)'}`,
    `platforms   ${plan.platforms.map(formatPlatform).join(', ')}`,
    `build mode  ${plan.buildMode} (${plan.buildModeSource === 'tree' ? 'read from hack/lib/init.sh' : 'inferred from the version'})`,
    `validity    leaf ${describeValidity(plan.validity.leaf)}, CA ${describeValidity(plan.validity.ca)}`,
    `build       ${envText} go build ${plan.goFlags.join(' ')} ${plan.package}`,
    `ldflags     ${verbose ? plan.ldflags : `${plan.ldflags.split(' -X ').length - 1} -X version flags (--verbose or --json shows them)`}`,
    `cache key   ${plan.cacheKey}`,
  ];
  if (plan.notes.length > 0) lines.push('notes:', ...plan.notes.map((n) => `  - ${n}`));
  if (patch) {
    if (patch.diff) lines.push('patch:', patch.diff.trimEnd());
    else lines.push('patch:      none needed: the tree already has these validities');
  }
  return `${lines.join('\n')}\n`;
}

const command = defineCommand({
  ...commandSummaries.plan,
  builder: (y) => withSourceOptions(withValidityOptions(withTargetOptions(y))),
  handler: (argv) =>
    runCommand(argv, async (args, out) => {
      const validity = resolveValidities(args);
      const platforms = resolvePlatforms(args);
      out.step('reading the kubeadm version');
      // a source named here also completes a --kubernetes-version target (commit, Go version)
      const { version, resolved, source, named } = await completeTargetFromSource(
        args,
        await resolveTarget(args),
        out,
        { named: true },
      );
      if (args.sourceDir !== undefined || args.sourceTarball !== undefined)
        out.step(`reading the source tree ${args.sourceDir ?? args.sourceTarball}`);
      // the same preparation as build's: what plan shows is what build would do, or its refusal
      const { plan, patch } = await prepareForPlan({
        version,
        validity,
        platforms,
        source: named ? source : undefined,
        cacheDir: args.cacheDir,
        env: process.env,
        events: out,
      });
      out.result(planDocument(plan, patch, resolved), planText(plan, patch, args.verbose, resolved));
    }),
});
export default command;
