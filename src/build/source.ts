import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unpackTarball } from '../adapters/archive.js';
import { assertSourceTree, resolveSourceTree } from '../adapters/source-tree.js';
import { UsageError } from '../core/errors.js';
import { newestFileTime, scanTree, sourceIdentity, type TreeScan } from '../carry/cache/source-identity.js';
import type { BuildDateOrigin } from '../core/reproducible.js';
import { sourceContentText } from '../core/source-volume.js';
import { sha256File } from '../adapters/fs.js';

/** Where --repo points unless given. */
export const DEFAULT_REPO = 'https://github.com/kubernetes/kubernetes.git';

/** Where the Kubernetes source comes from: a directory as it is, a tarball, or one git commit. */
export type SourceSpec =
  | { kind: 'dir'; dir: string }
  | { kind: 'tarball'; file: string }
  | { kind: 'git'; repo: string; commit: string };

export interface PreparedSource {
  /** the tree on this host; never modified (patched files are overlaid in the tar stream) */
  dir: string;
  /** for people, e.g. "git file:///src/k8s @ faecb19" */
  description: string;
  /** identity for the cache key when it is not the commit itself: "tarball:sha256:…", "dir:tree2:…" (content, never a path) */
  identity?: string;
  /** removes temp trees (unpacked tarball, git worktree); a no-op for --source-dir */
  dispose(): Promise<void>;
  /** the source's own time (seconds): commit time, newest tarball entry, newest file */
  time: number;
  timeOrigin: Exclude<BuildDateOrigin, 'SOURCE_DATE_EPOCH'>;
  /** what identifies it for a reviewer (recorded in the manifest's provenance) */
  provenance: SourceProvenance;
}

export interface SourceProvenance {
  kind: 'git' | 'tarball' | 'dir';
  /** git: the commit and its tree id */
  commit?: string;
  tree?: string;
  /** tarball: its sha256 */
  sha256?: string;
  /** dir: the content fingerprint (carry/cache/source-identity.ts scanTree) */
  fingerprint?: string;
  /** where it was read: the repository URL, the tarball's or directory's real path (to rebuild from) */
  location: string;
}

/** A fresh temp dir for one run's source (the caller may remove it on Ctrl-C). */
export function makeSourceWorkDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kubeadm-forever-src-'));
}

/**
 * The source with every local path resolved to its real path before anything reads it: a
 * directory (links, link to link, "..", trailing "/", relative) checked to be a tree with files
 * and cmd/kubeadm, a tarball checked to be a file. A git repository's path is resolved where its
 * URL is made (adapters/git.ts repoUrl).
 */
export async function resolveSource(spec: SourceSpec): Promise<SourceSpec> {
  switch (spec.kind) {
    case 'dir':
      return { kind: 'dir', dir: await resolveSourceTree(spec.dir) };
    case 'tarball': {
      let file: string;
      try {
        file = fs.realpathSync(path.resolve(spec.file));
      } catch {
        throw new UsageError(
          `--source-tarball ${spec.file}: no such file (or a link to a missing one)`,
          'pass the path of a Kubernetes source .tar.gz',
        );
      }
      if (!fs.statSync(file).isFile())
        throw new UsageError(
          `--source-tarball ${spec.file}: not a file`,
          'pass the path of a Kubernetes source .tar.gz',
        );
      return { kind: 'tarball', file };
    }
    case 'git':
      return spec;
  }
}

/**
 * source: makes the tree available on this host. --source-dir is used in place (read only);
 * a tarball is unpacked (top folder stripped) into a temp dir; git fetches only the one commit
 * into the mirror in the cache and checks it out into a temp worktree. Temp trees go under
 * `workDir` when given (so an interrupted run's caller can remove them), else a new temp dir.
 */
export async function prepareSource(
  given: SourceSpec,
  opts: { cacheDir: string; workDir?: string; scan?: TreeScan },
): Promise<PreparedSource> {
  const spec = await resolveSource(given);
  const tempDir = () => {
    if (!opts.workDir) return makeSourceWorkDir();
    fs.mkdirSync(opts.workDir, { recursive: true });
    return opts.workDir;
  };
  switch (spec.kind) {
    case 'dir': {
      const dir = spec.dir;
      // the cache keys' walk of the same directory, when there was one
      const scan = opts.scan ?? scanTree(dir, { memoDir: opts.cacheDir });
      return {
        dir,
        description:
          given.kind === 'dir' && given.dir !== dir
            ? `directory ${dir} (given as ${given.dir})`
            : `directory ${dir}`,
        identity: await sourceIdentity(spec, scan),
        dispose: async () => undefined,
        time: scan.newestFile,
        timeOrigin: 'newest file in the directory',
        provenance: { kind: 'dir', fingerprint: scan.fingerprint, location: dir },
      };
    }
    case 'tarball': {
      const file = spec.file;
      const tmp = tempDir();
      const dispose = async () => fs.rmSync(tmp, { recursive: true, force: true });
      try {
        const digest = await sha256File(file);
        await unpackTarball(file, tmp);
        await assertSourceTree(tmp);
        return {
          dir: tmp,
          description: `tarball ${file}`,
          identity: sourceContentText({ kind: 'tarball', sha256: digest }),
          dispose,
          time: newestFileTime(tmp),
          timeOrigin: 'newest tarball entry',
          provenance: { kind: 'tarball', sha256: digest, location: file },
        };
      } catch (err) {
        await dispose();
        throw err;
      }
    }
    case 'git': {
      // simple-git is loaded only when a git source is used (start-up time of the other paths)
      const { checkoutCommit, repoUrl } = await import('../adapters/git.js');
      const url = repoUrl(spec.repo);
      const tmp = tempDir();
      const dest = path.join(tmp, 'kubernetes');
      try {
        const checkout = await checkoutCommit({
          repo: spec.repo,
          commit: spec.commit,
          cacheDir: opts.cacheDir,
          dest,
        });
        const dispose = async () => {
          await checkout.dispose();
          fs.rmSync(tmp, { recursive: true, force: true });
        };
        try {
          await assertSourceTree(dest);
        } catch (err) {
          await dispose();
          throw err;
        }
        return {
          dir: dest,
          description: `git ${url} @ ${spec.commit.slice(0, 12)}`,
          dispose,
          time: checkout.commitTime,
          timeOrigin: 'git commit time',
          provenance: { kind: 'git', commit: checkout.commit, tree: checkout.tree, location: url },
        };
      } catch (err) {
        fs.rmSync(tmp, { recursive: true, force: true });
        throw err;
      }
    }
  }
}
