import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { assertSourceTree, emptyTreeError, resolveSourceTree } from '../adapters/source-tree.js';
import type { TarballIndex } from '../adapters/tarball-tree.js';
import { diskTree, type TreeFs } from '../adapters/tree-fs.js';
import { KfError, UsageError } from '../core/errors.js';
import {
  forgetTarballDigest,
  readTarball,
  type IdentifiedSource,
  type ScanOptions,
} from '../carry/cache/source-identity.js';
import type { BuildDateOrigin } from '../core/reproducible.js';
import type { SourceSpec } from '../core/types.js';

/** Where --repo points unless given. */
export const DEFAULT_REPO = 'https://github.com/kubernetes/kubernetes.git';

export interface PreparedSource {
  /** the tree, read only (patched files are overlaid in the tar stream) */
  tree: TreeFs;
  /** its directory on this host (a directory or git source); a tarball has none: it is never unpacked */
  dir?: string;
  /** a tar stream of the tree for a build: `selection` (absent: the whole tree but .git and _output) */
  pack(opts: SourcePackOptions): Readable;
  /** the bytes of the given files, for progress */
  sizeOf(files: readonly string[]): number;
  /** for people, e.g. "git file:///src/k8s @ faecb19" */
  description: string;
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

export interface SourcePackOptions {
  prefix: string;
  selection?: { files: readonly string[]; symlinks: readonly string[] };
  overrides: ReadonlyMap<string, string>;
  extraDirs: readonly string[];
}

/** Top-level names never streamed into a container: git metadata and old build output. */
const EXCLUDED = ['.git', '_output'];

/** pack and sizeOf of a tree on this host. */
async function onDisk(dir: string): Promise<Pick<PreparedSource, 'tree' | 'dir' | 'pack' | 'sizeOf'>> {
  // the tar writers are loaded once a source is prepared (a miss), never for a cache hit
  const { packDirectory, packSelection } = await import('../adapters/archive.js');
  return {
    tree: diskTree(dir),
    dir,
    pack: ({ selection, ...opts }) =>
      selection ? packSelection(dir, selection, opts) : packDirectory(dir, { ...opts, exclude: EXCLUDED }),
    sizeOf(files) {
      let total = 0;
      for (const f of files) {
        try {
          total += fs.lstatSync(path.join(dir, f)).size;
        } catch {
          /* the packer reports a missing file itself */
        }
      }
      return total;
    },
  };
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
 * The source comes identified (build/prepare.ts): its walk or sha256 is not computed again.
 */
export async function prepareSource(
  source: IdentifiedSource,
  opts: Pick<ScanOptions, 'onTarballRead' | 'onTarballProgress'> & { cacheDir: string; workDir?: string },
): Promise<PreparedSource> {
  const { spec, given } = source;
  const tempDir = () => {
    if (!opts.workDir) return makeSourceWorkDir();
    fs.mkdirSync(opts.workDir, { recursive: true });
    return opts.workDir;
  };
  switch (spec.kind) {
    case 'dir': {
      const dir = spec.dir;
      const scan = source.scan;
      if (!scan) throw new Error('a directory source comes with its walk (identifySource)');
      return {
        ...(await onDisk(dir)),
        description:
          given.kind === 'dir' && given.dir !== dir
            ? `directory ${dir} (given as ${given.dir})`
            : `directory ${dir}`,
        dispose: async () => undefined,
        time: scan.newestFile,
        timeOrigin: 'newest file in the directory',
        provenance: { kind: 'dir', fingerprint: scan.fingerprint, location: dir },
      };
    }
    case 'tarball': {
      const file = spec.file;
      const digest = source.sha256;
      if (!digest) throw new Error('a tarball source comes with its sha256 (identifySource)');
      // read in this run already (identifySource), or now: its sha256 was taken from the record
      // of an unchanged file, which this pass checks
      const tarball =
        source.tarball ?? (await readTarball(file, { onTarballProgress: opts.onTarballProgress }));
      if (tarball.sha256 !== digest) {
        forgetTarballDigest(opts.cacheDir, file);
        throw new KfError(
          `source tarball ${file} is not the file whose sha256 was recorded (${digest.slice(0, 12)}…): it reads ${tarball.sha256.slice(0, 12)}… with the same size, times and inode`,
          'build again: the record is dropped and the tarball is hashed afresh; nothing was built',
        );
      }
      assertTarballTree(tarball, source.given.kind === 'tarball' ? source.given.file : file);
      const { entrySizes, packTarball } = await import('../adapters/tarball-tree.js');
      return {
        tree: tarball,
        pack: ({ selection, ...rest }) => packTarball(tarball, { ...rest, selection, exclude: EXCLUDED }),
        sizeOf: (files) => entrySizes(tarball, files),
        description: `tarball ${file}`,
        dispose: async () => undefined,
        time: tarball.newestFile,
        timeOrigin: 'newest tarball entry',
        provenance: { kind: 'tarball', sha256: digest, location: file },
      };
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
          ...(await onDisk(dest)),
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

/** A tarball's tree refused as a directory's would be: no files, or no cmd/kubeadm. */
function assertTarballTree(tarball: TarballIndex, given: string): void {
  if (![...tarball.entries.values()].some((e) => e.type === 'file')) throw emptyTreeError(given);
  if (tarball.lstat('cmd/kubeadm')?.type !== 'directory')
    throw new UsageError(
      `${JSON.stringify(given)} is not a Kubernetes source tree: it has no cmd/kubeadm`,
      'pass the tarball of the Kubernetes source (with go.mod and cmd/ below its top folder)',
    );
}
