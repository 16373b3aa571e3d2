import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { unpackTarball } from '../adapters/archive.js';
import { assertSourceTree } from '../adapters/source-tree.js';
import { UsageError } from '../errors.js';
import { newestFileTime, scanTree, type TreeScan } from '../cache/source-identity.js';
import type { BuildDateOrigin } from '../core/reproducible.js';

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
  /** identity for the cache key when it is not the commit itself, e.g. "tarball:sha256:…" */
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
  /** dir: sha256 over every entry's path, size, mode and mtime */
  fingerprint?: string;
  /** what was given: the repository URL, the tarball or directory path (to rebuild from) */
  location: string;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** A fresh temp dir for one run's source (the caller may remove it on Ctrl-C). */
export function makeSourceWorkDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kubeadm-forever-src-'));
}

/**
 * source: makes the tree available on this host. --source-dir is used in place (read only);
 * a tarball is unpacked (top folder stripped) into a temp dir; git fetches only the one commit
 * into the mirror in the cache and checks it out into a temp worktree. Temp trees go under
 * `workDir` when given (so an interrupted run's caller can remove them), else a new temp dir.
 */
export async function prepareSource(spec: SourceSpec, opts: { cacheDir: string; workDir?: string; scan?: TreeScan }): Promise<PreparedSource> {
  const tempDir = () => {
    if (!opts.workDir) return makeSourceWorkDir();
    fs.mkdirSync(opts.workDir, { recursive: true });
    return opts.workDir;
  };
  switch (spec.kind) {
    case 'dir': {
      const dir = path.resolve(spec.dir);
      await assertSourceTree(dir);
      // the cache keys' walk of the same directory, when there was one
      const scan = opts.scan ?? (await scanTree(dir));
      return {
        dir,
        description: `directory ${dir}`,
        identity: `dir:${dir}`,
        dispose: async () => undefined,
        time: scan.newestFile,
        timeOrigin: 'newest file in the directory',
        provenance: { kind: 'dir', fingerprint: scan.fingerprint, location: dir },
      };
    }
    case 'tarball': {
      const file = path.resolve(spec.file);
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
        throw new UsageError(`--source-tarball ${spec.file}: no such file`, 'pass the path of a Kubernetes source .tar.gz');
      }
      const tmp = tempDir();
      const dispose = async () => fs.rmSync(tmp, { recursive: true, force: true });
      try {
        const digest = await sha256File(file);
        await unpackTarball(file, tmp);
        await assertSourceTree(tmp);
        return {
          dir: tmp,
          description: `tarball ${file}`,
          identity: `tarball:sha256:${digest}`,
          dispose,
          time: await newestFileTime(tmp),
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
        const checkout = await checkoutCommit({ repo: spec.repo, commit: spec.commit, cacheDir: opts.cacheDir, dest });
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
