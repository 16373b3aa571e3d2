import { UsageError } from './errors.js';
import { computePatch } from './patch.js';
import { assertPatchableKube, type SourceFiles } from './patch-targets.js';
import { createBuildPlan, type BuildPlanInput } from './plan.js';
import type { BuildMode, BuildPlan, KubeVersion, TreePatch, Validities } from './types.js';
import { kubeMinorText } from './version.js';

/**
 * The decisions `plan`, `patch`, `build` and `audit` share, in one place (pure: the tree's facts
 * come in as data, read by build/prepare.ts): which version governs the patch, the build mode,
 * the plan and the patch. A command never decides one of these itself.
 */

/** What a source tree says about itself. */
export interface TreeFacts {
  /** from hack/lib/init.sh; undefined when the tree has none (`patch` only: a build refuses it) */
  buildMode?: BuildMode;
  /** major.minor of its newest changelog (CHANGELOG/CHANGELOG-1.N.md); undefined when it has none */
  kube?: KubeVersion;
  /** every file the patch may read, as the tree has them */
  files: SourceFiles;
  /** the cert.go `go build` compiles (adapters/source-tree.ts readPatchInputs) */
  clientGoCertFile: string;
}

/**
 * The one rule for which version governs the patch. A tree that says which release it is and a
 * target that names another must not become a binary stamped with the target's version and
 * built from the other release's code (its patch would follow one and its version strings the
 * other): that is refused, the way a --go-version that disagrees with the toolchain is. Where
 * only one of them is known, it governs; where both agree, the target (it has the patch level).
 *
 * One leniency: a pre-release target (v1.N.0-alpha.0, cut before its release notes exist) may
 * sit on a tree whose newest changelog is 1.N-1.
 */
export function governingKube(
  target: { gitVersion: string; kube: KubeVersion } | undefined,
  tree: KubeVersion | undefined,
): KubeVersion | undefined {
  if (!target) return tree;
  if (!tree) return target.kube;
  const same = tree.major === target.kube.major && tree.minor === target.kube.minor;
  const preRelease =
    target.kube.pre !== '' && tree.major === target.kube.major && tree.minor === target.kube.minor - 1;
  if (!same && !preRelease) throw treeVersionMismatch(target.gitVersion, tree);
  return target.kube;
}

/** The refusal of a tree of another release than the target (plan and build say the same). */
export function treeVersionMismatch(gitVersion: string, tree: KubeVersion): UsageError {
  return new UsageError(
    `the source tree is Kubernetes ${kubeMinorText(tree)} (its newest changelog) but the target is ${gitVersion}: the binary would report ${gitVersion} and be built from ${kubeMinorText(tree)} code`,
    `pass the source of ${gitVersion} (--source-dir, --source-tarball or --repo at its commit), or name the version the tree is (the cluster's kubeadm version)`,
  );
}

export interface BuildDecision {
  plan: BuildPlan;
  /** the version the patch was made for (undefined: neither target nor tree names one) */
  governing: KubeVersion | undefined;
  /** with a tree: the patch */
  patch?: TreePatch;
}

/**
 * The plan (and, with a tree, the patch) of a target: the build mode from the tree when it has
 * one, else inferred from the version (core/plan.ts); the governing version by governingKube.
 */
export function decideBuild(input: BuildPlanInput, tree?: TreeFacts): BuildDecision {
  const plan = createBuildPlan(
    tree?.buildMode ? { ...input, buildMode: { mode: tree.buildMode, source: 'tree' } } : input,
  );
  const governing = governingKube({ gitVersion: plan.version.gitVersion, kube: plan.kube }, tree?.kube);
  if (!tree) return { plan, governing };
  const patch = patchOf(tree, input.validity, governing);
  plan.notes.push(...(patch.notes ?? []));
  return { plan, governing, patch };
}

/** The patch of a tree with no target (`patch DIR`): the tree's own version governs. */
export function decidePatch(tree: TreeFacts, validity: Validities): TreePatch {
  return patchOf(tree, validity, governingKube(undefined, tree.kube));
}

function patchOf(tree: TreeFacts, validity: Validities, governing: KubeVersion | undefined): TreePatch {
  if (governing) assertPatchableKube(governing);
  return computePatch(tree.files, validity, { kube: governing, clientGoCertFile: tree.clientGoCertFile });
}
