import path from 'node:path';
import fs from 'node:fs';
import { readTreeFiles } from '../adapters/source-tree.js';
import type { VersionInfo } from '../core/types.js';
import { validateCommit } from '../core/version.js';
import { UsageError } from '../core/errors.js';
import type { SourceSpec } from '../core/types.js';

/**
 * resolve, second half: a target named by `--kubernetes-version vX.Y.Z` alone gets what the
 * node's `kubeadm version` would have given, from the source: the commit from the repository's
 * release tag (git sources; `git ls-remote`, peeled), the Go version from the tree (.go-version,
 * else the kube-cross tag; core/tree-go-version.ts). What was given stays as it is.
 */

/** One value found for the target, and where it came from (plan shows both). */
export interface ResolvedValue {
  value: string;
  from: string;
}

export interface CompletedTarget {
  version: VersionInfo;
  /** the source, with the resolved commit for a git source */
  source: SourceSpec | undefined;
  resolved: { gitCommit?: ResolvedValue; goVersion?: ResolvedValue };
}

/** Fills the commit and Go version a target lacks from `source` (nothing to do: returned as it is). */
export async function completeTarget(
  version: VersionInfo,
  source: SourceSpec | undefined,
  opts: { cacheDir: string },
): Promise<CompletedTarget> {
  const resolved: CompletedTarget['resolved'] = {};
  if (!source || (version.gitCommit && version.goVersion)) return { version, source, resolved };
  let next = { ...version };
  let spec: SourceSpec = source;

  if (!next.gitCommit && spec.kind === 'git') {
    const { resolveTagCommit, repoUrl } = await import('../adapters/git.js');
    const tag = await resolveTagCommit(spec.repo, version.gitVersion);
    const commit = validateCommit(tag.commit, `the commit of tag ${version.gitVersion}`);
    next = { ...next, gitCommit: commit, gitTreeState: next.gitTreeState || 'clean' };
    spec = { ...spec, commit };
    resolved.gitCommit = {
      value: commit,
      from: `${tag.annotated ? 'annotated ' : ''}tag ${version.gitVersion} of ${repoUrl(spec.repo)}`,
    };
  }

  if (!next.goVersion) {
    const found = await treeGoVersion(spec, opts.cacheDir);
    if (found) {
      next = { ...next, goVersion: found.goVersion };
      resolved.goVersion = { value: found.goVersion, from: found.from };
    }
  }
  return { version: next, source: spec, resolved };
}

/** The Go version files of the source, read without unpacking or checking out anything. */
async function treeGoVersion(spec: SourceSpec, cacheDir: string) {
  // loaded only when the target lacks its Go version (it brings the yaml library)
  const { goVersionFromTree, TREE_GO_VERSION_FILES } = await import('../core/tree-go-version.js');
  switch (spec.kind) {
    case 'dir': {
      const found = goVersionFromTree(await readTreeFiles(path.resolve(spec.dir), TREE_GO_VERSION_FILES));
      return found && { ...found, from: `${found.from} in ${path.resolve(spec.dir)}` };
    }
    case 'tarball': {
      const file = path.resolve(spec.file);
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
        throw new UsageError(
          `--source-tarball ${spec.file}: no such file`,
          'pass the path of a Kubernetes source .tar.gz',
        );
      }
      const { readTarballFiles } = await import('../adapters/tarball-tree.js');
      const found = goVersionFromTree(await readTarballFiles(file, TREE_GO_VERSION_FILES));
      return found && { ...found, from: `${found.from} in ${file}` };
    }
    case 'git': {
      // no commit (the tag was not resolved): nothing to read the tree of
      if (!spec.commit) return undefined;
      const { readCommitFiles } = await import('../adapters/git.js');
      const found = goVersionFromTree(
        await readCommitFiles({
          repo: spec.repo,
          commit: spec.commit,
          cacheDir,
          paths: TREE_GO_VERSION_FILES,
        }),
      );
      return found && { ...found, from: `${found.from} at commit ${spec.commit.slice(0, 12)}` };
    }
  }
}
